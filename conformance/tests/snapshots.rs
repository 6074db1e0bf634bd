//! The normalized transcript of the reference server, per transport, under
//! `fixtures/snapshots/rust/`. Other targets write the same files with `--snapshot-dir`.

mod support;

use mcp_auth_conformance::Transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_server_transcript_matches_the_snapshot() {
    let target = support::start(&[], &[]).await;
    let report = support::run(target.config()).await;
    let streamable = report.transcript.for_transport(Transport::StreamableHttp);
    let sse = report.transcript.for_transport(Transport::Sse);
    insta::with_settings!({
        snapshot_path => "../../fixtures/snapshots/rust",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("streamable-http", streamable);
        insta::assert_json_snapshot!("sse", sse);
    });
}
