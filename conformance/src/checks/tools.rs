//! TOOLS: the spec's rules for `tools/list` and tool results, which any MCP server must meet
//! whatever its tools, and this project's tool profile (`--tool-profile github`, the
//! default): the `get_user_profile` tool returns the profile of the user who logged in,
//! structured content matches its output schema, and upstream failures are `isError`. The
//! profile checks are the `#profile` cases and the checks that need the tool; with
//! `--tool-profile none` they are skipped.

use serde_json::{Value, json};

use base64::Engine as _;

use super::{BOTH, Check, Ctx, Findings, LoginOptions, SHTTP, Verdict};
use crate::body;
use crate::client::McpConn;
use crate::config::ToolProfile;
use crate::version::Version;

const TOOL: &str = "get_user_profile";

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("TOOLS-01", BOTH, body!(tools_capability_declared)),
        Check::new("TOOLS-02", BOTH, body!(tools_list_shape)),
        Check::new("TOOLS-02", BOTH, body!(profile_tool_is_listed)).case("profile", "tool profile github: tools/list lists get_user_profile"),
        // The suite's SSE sessions negotiate 2024-11-05, before the rule.
        Check::new("TOOLS-03", SHTTP, body!(schemas_are_valid)),
        Check::new("TOOLS-04", BOTH, body!(tool_names)),
        Check::new("TOOLS-05", BOTH, body!(pagination_ends)),
        Check::new("TOOLS-06", BOTH, body!(tool_result_shape)),
        Check::new("TOOLS-06", BOTH, body!(profile_of_the_user)).case("profile", "tool profile github: get_user_profile returns exactly the logged-in user's GitHub profile").also(&["SHTTP-24"]),
        // The suite's SSE sessions negotiate 2024-11-05, which has no structuredContent
        // to judge.
        Check::new("TOOLS-08", SHTTP, body!(structured_content)).also(&["TOOLS-07", "LIFE-06"]),
        Check::new("TOOLS-09", SHTTP, body!(structured_content_as_text)),
        Check::new("TOOLS-15", SHTTP, body!(embedded_resources_declared)),
        Check::new("TOOLS-10", BOTH, body!(upstream_failure_is_tool_error)),
        Check::new("TOOLS-16", BOTH, body!(upstream_rate_limit_is_tool_error)),
    ]
}

async fn list_tools(conn: &mut McpConn) -> anyhow::Result<(crate::http::Exchange, Value)> {
    let (ex, response) = conn.call("tools/list", json!({})).await?;
    let result = response
        .get("result")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("tools/list failed: {response}"))?;
    Ok((ex, result))
}

async fn tools_list_shape(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let negotiated = super::negotiated_version(&init);
    let (ex, result) = list_tools(&mut conn).await?;
    cx.record(
        "tools/list result",
        crate::snapshot::normalize_json(cx.config(), &result),
    );
    let mut f = Findings::new(&cx);
    f.require(
        result.get("tools").is_some_and(Value::is_array),
        "result.tools is not an array",
        Some(&ex),
    );
    f.require(
        result.get("nextCursor").is_none_or(Value::is_string),
        format!(
            "nextCursor is {}, not a string",
            super::shown_json(result.get("nextCursor"))
        ),
        Some(&ex),
    );
    let tools = result
        .get("tools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for tool in &tools {
        for problem in tool_definition_problems(tool, &negotiated) {
            f.require(false, problem, Some(&ex));
        }
    }
    Ok(f.verdict())
}

/// What in one tool definition breaks the `Tool` schema of the negotiated version. Only
/// the fields the schema defines are judged, and an optional field only when present:
/// members a version does not know are allowed, as everywhere in the protocol.
fn tool_definition_problems(tool: &Value, negotiated: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(tool) = tool.as_object() else {
        return vec![format!(
            "a tool is {}, not an object",
            super::shown_json(Some(tool))
        )];
    };
    let name = match tool.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => {
            problems.push(format!(
                "a tool's name is {}, not a non-empty string",
                super::shown_json(tool.get("name"))
            ));
            "(unnamed)".to_owned()
        }
    };
    let mut optional_string = |field: &str| {
        if tool.get(field).is_some_and(|value| !value.is_string()) {
            problems.push(format!(
                "{name}: {field} is {}, not a string",
                super::shown_json(tool.get(field))
            ));
        }
    };
    // A field is judged from the version that defines it; before, it is a member the
    // version does not know, which is allowed.
    let defines = |since: &str| negotiated >= since;
    optional_string("description");
    if defines("2025-06-18") {
        optional_string("title");
    }
    // "inputSchema: { type: \"object\"; properties?: ...; required?: string[] }" in every
    // version.
    if tool
        .get("inputSchema")
        .and_then(|schema| schema.get("type"))
        != Some(&json!("object"))
    {
        problems.push(format!("{name}: inputSchema is not type object"));
    }
    // 2025-06-18 and 2025-11-25 define outputSchema as an object schema
    // ("outputSchema?: { type: \"object\"; ... }"); 2026-07-28 allows any JSON Schema.
    if let Some(schema) = tool.get("outputSchema").filter(|_| defines("2025-06-18")) {
        let object_schema = schema.get("type") == Some(&json!("object"));
        let any_schema = schema.is_object() || schema.is_boolean();
        if negotiated >= "2026-07-28" {
            if !any_schema {
                problems.push(format!(
                    "{name}: outputSchema is {}, not a JSON Schema",
                    super::shown_json(Some(schema))
                ));
            }
        } else if !object_schema {
            problems.push(format!(
                "{name}: outputSchema has type {}, not \"object\" (required in {negotiated})",
                super::shown_json(schema.get("type"))
            ));
        }
    }
    if let Some(annotations) = tool.get("annotations").filter(|_| defines("2025-03-26")) {
        match annotations.as_object() {
            None => problems.push(format!(
                "{name}: annotations is {}, not an object",
                super::shown_json(Some(annotations))
            )),
            Some(annotations) => {
                for hint in [
                    "readOnlyHint",
                    "destructiveHint",
                    "idempotentHint",
                    "openWorldHint",
                ] {
                    if annotations
                        .get(hint)
                        .is_some_and(|value| !value.is_boolean())
                    {
                        problems.push(format!(
                            "{name}: annotations.{hint} is {}, not a boolean",
                            super::shown_json(annotations.get(hint))
                        ));
                    }
                }
                if annotations
                    .get("title")
                    .is_some_and(|value| !value.is_string())
                {
                    problems.push(format!("{name}: annotations.title is not a string"));
                }
            }
        }
    }
    if tool.get("_meta").is_some_and(|meta| !meta.is_object()) {
        problems.push(format!("{name}: _meta is not an object"));
    }
    if let Some(icons) = tool.get("icons").filter(|_| defines("2025-11-25")) {
        let valid = icons.as_array().is_some_and(|icons| {
            icons
                .iter()
                .all(|icon| icon.get("src").is_some_and(Value::is_string))
        });
        if !valid {
            problems.push(format!(
                "{name}: icons is {}, not an array of icons with a src string",
                super::shown_json(Some(icons))
            ));
        }
    }
    if let Some(execution) = tool.get("execution").filter(|_| defines("2025-11-25")) {
        let task_support = execution.get("taskSupport");
        let valid = execution.is_object()
            && task_support.is_none_or(|support| {
                ["forbidden", "optional", "required"]
                    .iter()
                    .any(|allowed| support == allowed)
            });
        if !valid {
            problems.push(format!(
                "{name}: execution is {}; taskSupport must be forbidden, optional or required",
                super::shown_json(Some(execution))
            ));
        }
    }
    problems
}

/// Why a profile check does not run, when the profile is off.
fn profile_off(cx: &Ctx) -> Option<Verdict> {
    (cx.config().tool_profile == ToolProfile::None).then(|| {
        Verdict::Skip(format!(
            "--tool-profile none: the {TOOL} contract of the GitHub-login profile is not checked"
        ))
    })
}

async fn profile_tool_is_listed(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, result) = list_tools(&mut conn).await?;
    let mut f = Findings::new(&cx);
    let listed = result
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| tools.iter().any(|t| t.get("name") == Some(&json!(TOOL))));
    f.require(listed, format!("no {TOOL} tool"), Some(&ex));
    Ok(f.verdict())
}

/// The tool the result-shape check calls: one that says it changes nothing
/// (`readOnlyHint`) and needs no arguments, else the profile's tool. The suite does not
/// call tools that may change state on the server under test.
fn callable_tool(cx: &Ctx, tools: &Value) -> Option<String> {
    let tools = tools.get("tools").and_then(Value::as_array)?;
    let needs_no_arguments = |t: &Value| {
        t.pointer("/inputSchema/required")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    let read_only = tools.iter().find(|t| {
        t.pointer("/annotations/readOnlyHint") == Some(&json!(true)) && needs_no_arguments(t)
    });
    let profile = tools.iter().find(|t| {
        cx.config().tool_profile == ToolProfile::GitHub && t.get("name") == Some(&json!(TOOL))
    });
    profile
        .or(read_only)
        .and_then(|t| t.get("name")?.as_str().map(str::to_owned))
}

/// The content block types of a version's `CallToolResult`.
fn content_types(negotiated: &str) -> &'static [&'static str] {
    if negotiated >= "2025-06-18" {
        &["text", "image", "audio", "resource", "resource_link"]
    } else if negotiated >= "2025-03-26" {
        &["text", "image", "audio", "resource"]
    } else {
        &["text", "image", "resource"]
    }
}

/// TOOLS-06: `CallToolResult { content: ContentBlock[]; isError?: boolean }`, each block of
/// a type the negotiated version knows, base64 fields that decode.
async fn tool_result_shape(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let negotiated = super::negotiated_version(&init);
    let (_, tools) = list_tools(&mut conn).await?;
    let Some(name) = callable_tool(&cx, &tools) else {
        return Ok(Verdict::Skip(
            "no tool is marked readOnlyHint and callable without arguments, and the suite does \
             not call tools that may change state"
                .into(),
        ));
    };
    let (ex, result) = conn.call_tool(&name, json!({})).await?;
    let mut f = Findings::new(&cx);
    f.require(
        result.get("content").is_some_and(Value::is_array),
        format!("{name}: result.content is not an array"),
        Some(&ex),
    );
    f.require(
        result.get("isError").is_none_or(Value::is_boolean),
        format!("{name}: isError is not a boolean"),
        Some(&ex),
    );
    let known = content_types(&negotiated);
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let decodes = |v: Option<&Value>| {
        v.and_then(Value::as_str).is_some_and(|data| {
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .is_ok()
        })
    };
    for block in &blocks {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        f.require(
            known.contains(&kind),
            format!("{name}: content block type {kind:?} is not one of {negotiated}'s"),
            Some(&ex),
        );
        let ok = match kind {
            "text" => block.get("text").is_some_and(Value::is_string),
            "image" | "audio" => {
                decodes(block.get("data")) && block.get("mimeType").is_some_and(Value::is_string)
            }
            "resource" => block.pointer("/resource/uri").is_some_and(Value::is_string),
            "resource_link" => {
                block.get("uri").is_some_and(Value::is_string)
                    && block.get("name").is_some_and(Value::is_string)
            }
            _ => true,
        };
        f.require(
            ok,
            format!("{name}: a {kind} block lacks its required fields"),
            Some(&ex),
        );
    }
    f.note(format!("called {name}"));
    Ok(f.verdict())
}

/// The profile JSON a tool result carries: `structuredContent`, else the first text block.
pub(super) fn profile_in(result: &Value) -> Option<Value> {
    if let Some(s) = result.get("structuredContent") {
        return Some(s.clone());
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .find(|c| c.get("type") == Some(&json!("text")))
        .and_then(|c| c.get("text")?.as_str())
        .and_then(|t| serde_json::from_str(t).ok())
}

async fn profile_of_the_user(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    // mona has a non-ASCII name, so this also checks UTF-8 end to end (SHTTP-24).
    let login = cx.login(LoginOptions::user("mona")).await?;
    let expected = cx.mock().user("mona").await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, result) = conn.call_tool(TOOL, json!({})).await?;
    cx.record(
        "tools/call get_user_profile result",
        crate::snapshot::normalize_json(cx.config(), &result),
    );
    let mut f = Findings::new(&cx);
    f.require(
        result.get("content").is_some_and(Value::is_array),
        "result.content is not an array",
        Some(&ex),
    );
    f.require(
        result.get("isError").is_none_or(|e| e == &json!(false)),
        "the call reported isError",
        Some(&ex),
    );
    let texts: Vec<Value> = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type") == Some(&json!("text")))
        .filter_map(|c| {
            c.get("text")?
                .as_str()
                .and_then(|t| serde_json::from_str(t).ok())
        })
        .collect();
    f.require(
        texts.first() == Some(&expected),
        format!(
            "the text content is not mona's profile (login {})",
            super::shown_json(texts.first().and_then(|t| t.get("login")))
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn structured_content(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let negotiated = super::negotiated_version(&init);
    let (_, tools) = list_tools(&mut conn).await?;
    let schema = tools
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|ts| ts.iter().find(|t| t.get("name") == Some(&json!(TOOL))))
        .and_then(|t| t.get("outputSchema").cloned());
    let (ex, result) = conn.call_tool(TOOL, json!({})).await?;
    let mut f = Findings::new(&cx);
    if negotiated.as_str() < "2025-06-18" {
        f.prefer(
            result.get("structuredContent").is_none(),
            format!("structuredContent in a {negotiated} session (LIFE-06)"),
            Some(&ex),
        );
        return Ok(f.verdict());
    }
    let Some(schema) = schema else {
        return Ok(Verdict::Skip(format!("{TOOL} has no outputSchema")));
    };
    match result.get("structuredContent") {
        Some(sc) => {
            f.require(
                sc.is_object(),
                "structuredContent is not an object",
                Some(&ex),
            );
            match crate::schema::validate(&schema, sc) {
                Ok(errors) => f.require(
                    errors.is_empty(),
                    format!(
                        "structuredContent does not match outputSchema: {}",
                        errors.join("; ")
                    ),
                    Some(&ex),
                ),
                // An outputSchema that is no valid schema is TOOLS-03's finding; here
                // there is nothing to hold the content to.
                Err(problem) => {
                    return Ok(Verdict::Skip(format!(
                        "{TOOL}'s outputSchema cannot be used to validate (see TOOLS-03): {problem}"
                    )));
                }
            };
        }
        None => {
            f.require(
                false,
                "the tool has an outputSchema but the result has no structuredContent",
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

async fn upstream_failure_is_tool_error(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    // GitHub works for the login (the server reads the profile then) and fails with 502
    // afterwards, when the tool calls it.
    let login = cx
        .login(LoginOptions {
            fault: Some("user_5xx_after_login".into()),
            ..LoginOptions::default()
        })
        .await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .call("tools/call", json!({"name": TOOL, "arguments": {}}))
        .await?;
    cx.record(
        "tools/call upstream failure",
        crate::snapshot::normalize_json(cx.config(), &response),
    );
    let mut f = Findings::new(&cx);
    f.require(
        response.pointer("/result/isError") == Some(&json!(true)),
        format!("GitHub failing during the tool gave {response}"),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// The tools of a `tools/list` result (empty when there is no array).
fn tools_of(result: &Value) -> Vec<Value> {
    result
        .get("tools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn name_of(tool: &Value) -> String {
    tool.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// TOOLS-01: "Servers that support tools MUST declare the `tools` capability". A server
/// that lists no tool may leave it out.
async fn tools_capability_declared(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let (ex, result) = list_tools(&mut conn).await?;
    let tools = tools_of(&result);
    let capability = init.pointer("/capabilities/tools");
    if tools.is_empty() && capability.is_none() {
        return Ok(Verdict::Skip(
            "the server lists no tools and does not declare the tools capability".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    f.require(
        capability.is_some_and(Value::is_object),
        format!(
            "tools/list offers {} tool(s) but the initialize result's capabilities.tools is {}",
            tools.len(),
            capability.map_or("missing".into(), Value::to_string)
        ),
        Some(&ex),
    );
    f.require(
        capability
            .and_then(|c| c.get("listChanged"))
            .is_none_or(Value::is_boolean),
        "capabilities.tools.listChanged is not a boolean",
        None,
    );
    Ok(f.verdict())
}

/// TOOLS-03: `inputSchema` "MUST be a valid JSON Schema object (not `null`)", and so
/// must `outputSchema`; "Clients and servers MUST support JSON Schema 2020-12 for
/// schemas without an explicit `$schema` field" (2025-11-25, Tools).
async fn schemas_are_valid(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let negotiated = super::negotiated_version(&init);
    if negotiated.as_str() < Version::V2025_11_25.as_str() {
        return Ok(Verdict::Skip(format!(
            "the session negotiated {negotiated}; the rule is from 2025-11-25"
        )));
    }
    let (ex, result) = list_tools(&mut conn).await?;
    let tools = tools_of(&result);
    if tools.is_empty() {
        return Ok(Verdict::Skip("the server lists no tools".into()));
    }
    let mut f = Findings::new(&cx);
    let mut judged = 0;
    for tool in &tools {
        let name = name_of(tool);
        for field in ["inputSchema", "outputSchema"] {
            let Some(schema) = tool.get(field) else {
                // outputSchema is optional; a missing inputSchema is TOOLS-02's finding.
                continue;
            };
            judged += 1;
            if !schema.is_object() {
                f.require(
                    false,
                    format!("{name}: {field} is {schema}, not a JSON Schema object"),
                    Some(&ex),
                );
                continue;
            }
            match crate::schema::check_schema(schema) {
                Ok(()) => {}
                Err(crate::schema::SchemaProblem::Invalid(why)) => {
                    f.require(
                        false,
                        format!("{name}: {field} is no valid JSON Schema: {why}"),
                        Some(&ex),
                    );
                }
                Err(crate::schema::SchemaProblem::Unjudged(why)) => {
                    f.note(format!("{name}: {field} not judged: {why}"))
                }
            }
        }
    }
    f.note(format!("{judged} schema(s) compiled"));
    Ok(f.verdict())
}

/// TOOLS-04: "Tool names SHOULD be between 1 and 128 characters in length (inclusive)",
/// of "uppercase and lowercase ASCII letters (A-Z, a-z), digits (0-9), underscore (_),
/// hyphen (-), and dot (.)", and "SHOULD be unique within a server".
async fn tool_names(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, result) = list_tools(&mut conn).await?;
    let mut f = Findings::new(&cx);
    let mut seen = std::collections::BTreeSet::new();
    for tool in tools_of(&result) {
        let name = name_of(&tool);
        f.require(
            (1..=128).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            format!("tool name {name:?} is outside [A-Za-z0-9_.-]{{1,128}}"),
            Some(&ex),
        );
        f.require(
            seen.insert(name.clone()),
            format!("the tool name {name:?} is listed twice"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// The most pages TOOLS-05 follows: a server whose list does not end by then loops.
const MAX_PAGES: usize = 50;

/// TOOLS-05, the pagination utility: "the server includes a `nextCursor` if more results
/// exist"; clients "continue pagination" with it until it is absent. A cursor that
/// comes back again, or a tool on two pages, means a client never sees the list whole.
async fn pagination_ends(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    let mut cursors = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    let mut params = json!({});
    for page in 1..=MAX_PAGES {
        let (ex, response) = conn.call("tools/list", params.clone()).await?;
        let Some(result) = response.get("result") else {
            f.require(
                false,
                format!(
                    "page {page} of tools/list (cursor {}) failed: {response}",
                    params.get("cursor").unwrap_or(&Value::Null)
                ),
                Some(&ex),
            );
            return Ok(f.verdict());
        };
        // A name twice on one page is TOOLS-04's finding; across pages it is this one's.
        let on_page: std::collections::BTreeSet<String> =
            tools_of(result).iter().map(name_of).collect();
        for name in &on_page {
            f.require(
                !names.contains(name),
                format!("{name:?} is listed again on page {page}"),
                Some(&ex),
            );
        }
        names.extend(on_page);
        match result.get("nextCursor") {
            None | Some(Value::Null) => {
                f.note(format!("{page} page(s), {} tool(s)", names.len()));
                return Ok(f.verdict());
            }
            Some(Value::String(cursor)) => {
                if !cursors.insert(cursor.clone()) {
                    f.require(
                        false,
                        format!("page {page} hands out the cursor {cursor:?} a second time"),
                        Some(&ex),
                    );
                    return Ok(f.verdict());
                }
                params = json!({"cursor": cursor});
            }
            Some(other) => {
                f.require(
                    false,
                    format!("nextCursor is {other}, not a string"),
                    Some(&ex),
                );
                return Ok(f.verdict());
            }
        }
    }
    f.require(
        false,
        format!("tools/list still had a nextCursor after {MAX_PAGES} pages"),
        None,
    );
    Ok(f.verdict())
}

/// TOOLS-09: "For backwards compatibility, a tool that returns structured content SHOULD
/// also return the serialized JSON in a TextContent block."
async fn structured_content_as_text(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, result) = conn.call_tool(TOOL, json!({})).await?;
    let Some(structured) = result.get("structuredContent") else {
        return Ok(Verdict::Skip(format!(
            "{TOOL} returned no structuredContent"
        )));
    };
    let mut f = Findings::new(&cx);
    let serialized = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type") == Some(&json!("text")))
        .filter_map(|c| serde_json::from_str::<Value>(c.get("text")?.as_str()?).ok())
        .any(|text| &text == structured);
    f.require(
        serialized,
        "no text block holds the structuredContent serialized as JSON",
        Some(&ex),
    );
    Ok(f.verdict())
}

/// TOOLS-15: "Servers that use embedded resources SHOULD implement the `resources`
/// capability" (2025-06-18 on).
async fn embedded_resources_declared(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let (_, tools) = list_tools(&mut conn).await?;
    let Some(name) = callable_tool(&cx, &tools) else {
        return Ok(Verdict::Skip(
            "no tool is marked readOnlyHint and callable without arguments, and the suite does \
             not call tools that may change state"
                .into(),
        ));
    };
    let (ex, result) = conn.call_tool(&name, json!({})).await?;
    let embedded = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type") == Some(&json!("resource")))
        .count();
    if embedded == 0 {
        return Ok(Verdict::Skip(format!(
            "{name} returned no embedded resource"
        )));
    }
    let mut f = Findings::new(&cx);
    f.require(
        init.pointer("/capabilities/resources")
            .is_some_and(Value::is_object),
        format!(
            "{name} returned {embedded} embedded resource(s), but the initialize result \
             declares no resources capability"
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// "Tool Execution Errors: Reported in tool results with `isError: true`: API failures, …"
/// (Tools, Error Handling). GitHub's rate limit is such an API failure, and the person reading
/// the result needs words, not an HTTP dump: the mock answers the tool's profile read first with
/// the primary limit (403, `x-ratelimit-remaining: 0`), then, in a second login, with a
/// secondary one (429, `retry-after`).
async fn upstream_rate_limit_is_tool_error(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Some(off) = profile_off(&cx) {
        return Ok(off);
    }
    let mut f = Findings::new(&cx);
    for (fault, what) in [
        (
            "user_403_rate_limit_after_login",
            "403 x-ratelimit-remaining: 0",
        ),
        ("user_429_after_login", "429 retry-after"),
    ] {
        // GitHub works for the login and is rate limited afterwards, when the tool calls it.
        let login = cx
            .login(LoginOptions {
                fault: Some(fault.into()),
                ..LoginOptions::default()
            })
            .await?;
        let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
        let (ex, response) = conn
            .call("tools/call", json!({"name": TOOL, "arguments": {}}))
            .await?;
        if !f.require(
            response.pointer("/result/isError") == Some(&json!(true)),
            format!("GitHub's rate limit ({what}) during the tool gave {response}"),
            Some(&ex),
        ) {
            continue;
        }
        let text: String = response
            .pointer("/result/content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        f.require(
            !text.trim().is_empty(),
            format!("the tool error for GitHub's rate limit ({what}) has no text to read"),
            Some(&ex),
        );
        let lower = text.to_ascii_lowercase();
        f.prefer(
            lower.contains("rate limit") || lower.contains("too many") || lower.contains("retry"),
            format!("the tool error for GitHub's rate limit ({what}) does not say so: {text:?}"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_of_the_schema_has_no_problems_and_unknown_members_are_allowed() {
        let tool = json!({
            "name": "get_user_profile",
            "title": "Profile",
            "description": "The profile.",
            "inputSchema": {"type": "object", "properties": {}},
            "outputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": true, "title": "Profile"},
            "icons": [{"src": "https://example.com/icon.png"}],
            "execution": {"taskSupport": "forbidden"},
            "_meta": {},
            "somethingNew": 1
        });
        for version in ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28"] {
            assert_eq!(
                tool_definition_problems(&tool, version),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn each_field_of_the_wrong_type_is_a_problem() {
        let tool = json!({
            "name": "t",
            "description": 4,
            "inputSchema": {},
            "outputSchema": {},
            "annotations": {"readOnlyHint": "yes"},
            "icons": [{}],
            "execution": {"taskSupport": "sometimes"},
            "_meta": []
        });
        let problems = tool_definition_problems(&tool, "2025-11-25");
        assert_eq!(problems.len(), 7, "{problems:#?}");
        // An outputSchema without "type": "object" is any JSON Schema from 2026-07-28 on.
        let later = tool_definition_problems(&tool, "2026-07-28");
        assert_eq!(later.len(), 6, "{later:#?}");
        assert!(
            !tool_definition_problems(&json!({"inputSchema": {"type": "object"}}), "2025-11-25")
                .is_empty()
        );
        // Before the versions that define them, those fields are unknown members: only the
        // description, inputSchema and _meta are judged at 2024-11-05.
        let original = tool_definition_problems(&tool, "2024-11-05");
        assert_eq!(original.len(), 3, "{original:#?}");
    }
}
