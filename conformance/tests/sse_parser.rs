//! The SSE parser against the framing servers really send.

use mcp_auth_conformance::http::sse::{SseEvent, SseParser};

fn parse_in_chunks(input: &[u8], chunk: usize) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    input.chunks(chunk).flat_map(|c| parser.push(c)).collect()
}

#[test]
fn the_endpoint_event_is_read_with_lf_and_crlf_line_ends() {
    for input in [
        &b"event: endpoint\ndata: /messages/?session_id=abc\n\n"[..],
        &b"event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n"[..],
        &b"event: endpoint\rdata: /messages/?session_id=abc\r\r"[..],
    ] {
        let events = parse_in_chunks(input, 1000);
        assert_eq!(events.len(), 1, "{input:?}");
        assert_eq!(events[0].kind(), "endpoint");
        assert_eq!(events[0].data, "/messages/?session_id=abc");
    }
}

#[test]
fn a_crlf_split_across_chunks_ends_only_one_line() {
    let input = b"data: a\r\n\r\ndata: b\r\n\r\n";
    for size in 1..input.len() {
        let events = parse_in_chunks(input, size);
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b"], "chunk size {size}");
    }
}

#[test]
fn comments_are_skipped_and_counted() {
    let mut parser = SseParser::new();
    let events = parser.push(b": ping\n\n: ping\r\ndata: {}\n\n");
    assert_eq!(events.len(), 1);
    assert_eq!(parser.comments, 2);
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    let events = parse_in_chunks(b"data: {\"a\":\ndata: 1}\ndata:\n\n", 3);
    assert_eq!(events[0].data, "{\"a\":\n1}\n");
}

#[test]
fn ids_persist_and_retry_is_reported() {
    let mut parser = SseParser::new();
    let events = parser.push(b"id: 7\ndata:\n\nretry: 1500\n\ndata: x\n\n");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].id.as_deref(), Some("7"));
    assert_eq!(
        events[0].data, "",
        "a priming event has an id and empty data"
    );
    assert_eq!(
        events[1].id.as_deref(),
        Some("7"),
        "the last event id carries over"
    );
    assert_eq!(parser.last_retry, Some(1500));
}

#[test]
fn a_field_without_a_colon_and_one_without_a_space_are_understood() {
    let events = parse_in_chunks(b"event:message\ndata\n\n", 100);
    assert_eq!(events[0].kind(), "message");
    assert_eq!(events[0].data, "");
}

#[test]
fn a_block_without_data_dispatches_nothing() {
    assert!(parse_in_chunks(b"event: endpoint\n\n", 100).is_empty());
}
