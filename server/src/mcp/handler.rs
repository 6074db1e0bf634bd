//! The MCP server proper, on the official Rust SDK: one tool, `get_user_profile`,
//! the same on both transports.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestMethod,
        CompleteRequestParams, CompleteResult, ContentBlock, CustomRequest, CustomResult,
        ErrorCode, Implementation, InitializeRequestParams, InitializeResult,
        ListPromptsRequestMethod, ListPromptsResult, ListResourcesRequestMethod,
        ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
        ServerCapabilities, ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
    },
    service::{NotificationContext, RequestContext},
};
use serde_json::{Map, Value, json};

use crate::{
    AppState,
    github::{Revalidated, UpstreamError},
    resource::Authenticated,
    store::CachedProfile,
};

pub const TOOL_NAME: &str = "get_user_profile";
/// The one cursor the `repeating-tool-pages` fault hands out (and accepts).
const REPEATING_CURSOR: &str = "page-2";
/// The one tool of the `other-tools-only` variant.
const OTHER_TOOL_NAME: &str = "describe_server";

#[derive(Clone)]
pub struct ProfileServer {
    state: AppState,
    /// Whether this session's client sent `notifications/initialized`; one server value
    /// serves one session.
    initialized: Arc<AtomicBool>,
}

impl ProfileServer {
    pub fn new(state: AppState) -> ProfileServer {
        ProfileServer {
            state,
            initialized: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The server of a session whose client sent `notifications/initialized` before
    /// rmcp took the session over from the thin SSE path (`sse.rs`).
    pub(super) fn initialized(state: AppState) -> ProfileServer {
        ProfileServer {
            state,
            initialized: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The answer to a method of a capability this server does not declare: "-32601
    /// Method not found" covers "one gated behind a server capability the server did not
    /// advertise" (2026-07-28 schema). The `answer-undeclared-capabilities` fault answers
    /// with an empty result instead, as if the capability had been negotiated.
    fn undeclared<T: Default, M: rmcp::model::ConstString>(&self) -> Result<T, McpError> {
        if crate::injected!(self.state.config, AnswerUndeclaredCapabilities) {
            Ok(T::default())
        } else {
            Err(McpError::method_not_found::<M>())
        }
    }

    /// An Invalid params error (-32602); the `invalid-params-as-internal-error` fault
    /// gives it the Internal error code instead.
    fn invalid_params(&self, message: &str) -> McpError {
        let code = if crate::injected!(self.state.config, InvalidParamsAsInternalError) {
            ErrorCode::INTERNAL_ERROR
        } else {
            ErrorCode::INVALID_PARAMS
        };
        McpError::new(code, message.to_owned(), None)
    }
}

/// The version this request's session runs at. rmcp reports what the client asked
/// for; when that was a version the server does not know, negotiation answered with
/// the newest version that has an `initialize` handshake, so that is what applies.
fn negotiated_version(context: &RequestContext<RoleServer>) -> String {
    session_version(context.protocol_version())
}

/// The version a session runs at, from the version rmcp reports for its requests (see
/// `negotiated_version`); the thin SSE path (`sse.rs`) passes the one it negotiated.
pub(super) fn session_version(reported: Option<ProtocolVersion>) -> String {
    match reported {
        Some(version) if ProtocolVersion::KNOWN_VERSIONS.contains(&version) => version.to_string(),
        _ => ProtocolVersion::V_2025_11_25.to_string(),
    }
}

/// Dated versions compare correctly as strings.
fn at_least(version: &str, minimum: &ProtocolVersion) -> bool {
    version >= minimum.to_string().as_str()
}

/// The `tools/list` answer for each shape the protocol versions give it, built once.
pub struct ToolList {
    /// 2024-11-05: no annotations, title or output schema.
    original: Vec<Tool>,
    /// 2025-03-26: annotations.
    annotated: Vec<Tool>,
    /// 2025-06-18 and later: title and output schema too.
    structured: Vec<Tool>,
}

impl ToolList {
    pub fn new(config: &crate::Config) -> ToolList {
        ToolList {
            original: vec![tool_definition(
                config,
                &ProtocolVersion::V_2024_11_05.to_string(),
            )],
            annotated: vec![tool_definition(
                config,
                &ProtocolVersion::V_2025_03_26.to_string(),
            )],
            structured: vec![tool_definition(
                config,
                &ProtocolVersion::V_2025_06_18.to_string(),
            )],
        }
    }

    fn for_version(&self, version: &str) -> &[Tool] {
        if at_least(version, &ProtocolVersion::V_2025_06_18) {
            &self.structured
        } else if at_least(version, &ProtocolVersion::V_2025_03_26) {
            &self.annotated
        } else {
            &self.original
        }
    }
}

fn tool_definition(config: &crate::Config, version: &str) -> Tool {
    let mut input_schema =
        json!({"type": "object", "properties": {}, "additionalProperties": false});
    if crate::injected!(config, UntypedInputSchema) {
        input_schema
            .as_object_mut()
            .map(|schema| schema.remove("type"));
    }
    if crate::injected!(config, InvalidInputSchema) {
        // `required` must be an array of names; a string breaks the 2020-12 meta-schema.
        input_schema["required"] = json!("nothing");
    }
    let Value::Object(input_schema) = input_schema else {
        unreachable!("the literal is an object")
    };
    if crate::injected!(config, OtherToolsOnly) {
        let mut tool = Tool::new(
            OTHER_TOOL_NAME,
            "Describes this server in one sentence.",
            Arc::new(input_schema),
        );
        if at_least(version, &ProtocolVersion::V_2025_03_26) {
            tool = tool.with_annotations(ToolAnnotations::new().read_only(true));
        }
        return tool;
    }
    let mut tool = Tool::new(
        TOOL_NAME,
        "Returns the GitHub profile of the user who authorized this client, as GitHub's \
         REST API `GET /user` returns it.",
        Arc::new(input_schema),
    );
    // Each field exists only from the version that introduced it, so older clients
    // get exactly the shape their schema describes.
    if at_least(version, &ProtocolVersion::V_2025_03_26) {
        tool = tool.with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(true),
        );
    }
    if at_least(version, &ProtocolVersion::V_2025_06_18) {
        tool = tool
            .with_title("Get GitHub user profile")
            .with_raw_output_schema(Arc::new(profile_schema()));
    }
    tool
}

/// The part of GitHub's `/user` shape the tool promises; GitHub adds fields over
/// time, so others are allowed.
fn profile_schema() -> Map<String, Value> {
    let schema = json!({
        "type": "object",
        "properties": {
            "login": {"type": "string"},
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "html_url": {"type": "string"},
            "avatar_url": {"type": "string"},
            "company": {"type": ["string", "null"]},
            "blog": {"type": ["string", "null"]},
            "location": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"]},
            "bio": {"type": ["string", "null"]},
            "public_repos": {"type": "integer"},
            "followers": {"type": "integer"},
            "following": {"type": "integer"},
            "created_at": {"type": "string"}
        },
        "required": ["login", "id"]
    });
    match schema {
        Value::Object(schema) => schema,
        _ => Map::new(),
    }
}

impl ServerHandler for ProfileServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = Implementation::new("mcp-github-server", env!("CARGO_PKG_VERSION"));
        info.title = Some("GitHub profile MCP server".into());
        let capabilities = if crate::injected!(self.state.config, OmitToolsCapability) {
            ServerCapabilities::default()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(info)
            .with_instructions(
                "Call get_user_profile to read the GitHub profile of the user who \
                 authorized this client.",
            )
    }

    /// What rmcp's default does, plus the `echo-any-protocol-version` fault.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        if crate::injected!(self.state.config, UnsupportedVersionAsInvalidParams) {
            let requested = request.protocol_version.as_str();
            let known = ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .any(|known| known.as_str() == requested);
            if !known {
                // The error of the specification's lifecycle example.
                let supported: Vec<&str> = ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .map(|known| known.as_str())
                    .collect();
                return Err(McpError::invalid_params(
                    "Unsupported protocol version",
                    Some(json!({"supported": supported, "requested": requested})),
                ));
            }
        }
        let mut result = self.negotiate_initialize(&request)?;
        if crate::injected!(self.state.config, EchoAnyProtocolVersion) {
            result.protocol_version = request.protocol_version.clone();
        }
        Ok(result)
    }

    /// 2026-07-28 `subscriptions/listen`: rmcp acknowledges the subscription (narrowed to
    /// what the capabilities advertise) and keeps its stream open until the client closes
    /// it. The tool list never changes, so nothing follows the acknowledgment.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let cursor = request.and_then(|request| request.cursor);
        self.tools_list(&negotiated_version(&context), cursor.as_deref())
    }

    /// The server declares neither prompts, resources nor completions, so their methods
    /// get -32601 (see `undeclared`); rmcp's defaults do the same, and these overrides
    /// give the fault its place.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.undeclared::<_, ListPromptsRequestMethod>()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.undeclared::<_, ListResourcesRequestMethod>()
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.undeclared::<_, CompleteRequestMethod>()
    }

    /// A ping is answered at any point of the session, also between `initialize` and
    /// `notifications/initialized`: clients may send pings before the handshake ends
    /// (lifecycle, Initialization). The `refuse-ping-before-initialized` fault refuses
    /// it until the notification came.
    async fn ping(&self, _context: RequestContext<RoleServer>) -> Result<(), McpError> {
        if crate::injected!(self.state.config, RefusePingBeforeInitialized)
            && !self.initialized.load(Ordering::SeqCst)
        {
            return Err(McpError::invalid_request(
                "the session is not initialized yet",
                None,
            ));
        }
        Ok(())
    }

    async fn on_initialized(&self, _context: NotificationContext<RoleServer>) {
        self.initialized.store(true, Ordering::SeqCst);
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Authenticated>());
        self.call(request, caller, &negotiated_version(&context))
            .await
            .map(CallToolResponse::from)
    }

    /// rmcp hands a request for a standard method whose params do not fit the
    /// method's schema (for example `tools/call` without `name`) to this hook, as if
    /// the method were unknown. Such a request is invalid params (-32602), not an
    /// unknown method (-32601).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        // Only the methods this server implements: one of an unadvertised capability
        // stays unknown whatever its params.
        const IMPLEMENTED_METHODS: &[&str] = &["initialize", "ping", "tools/list", "tools/call"];
        if IMPLEMENTED_METHODS.contains(&request.method.as_str()) {
            Err(self.invalid_params(&format!("invalid params for {}", request.method)))
        } else {
            let code = if crate::injected!(self.state.config, WrongMethodNotFoundCode) {
                ErrorCode::INTERNAL_ERROR
            } else {
                ErrorCode::METHOD_NOT_FOUND
            };
            Err(McpError::new(
                code,
                format!("Method not found: {}", request.method),
                None,
            ))
        }
    }
}

/// The `profile-cache-shared-across-users` fault's cache: one profile, keyed by nothing.
#[cfg(feature = "fault-injection")]
static SHARED_PROFILE: std::sync::Mutex<Option<serde_json::Value>> = std::sync::Mutex::new(None);

impl ProfileServer {
    /// The `tools/list` answer at a protocol version; the 2026-07-28 stateless layer
    /// serializes it once at startup (`stateless.rs`), sessions ask on every request.
    pub(super) fn tools_list(
        &self,
        version: &str,
        cursor: Option<&str>,
    ) -> Result<ListToolsResult, McpError> {
        if crate::injected!(self.state.config, UnlistedProfileTool) {
            return Ok(ListToolsResult::with_all_items(Vec::new()));
        }
        // Every tool fits on one page, so the server never issues a cursor and any
        // cursor a client sends is invalid: "Invalid cursors SHOULD result in an error
        // with code -32602 (Invalid params)" (pagination utility).
        let repeats = crate::injected!(self.state.config, RepeatingToolPages)
            && cursor == Some(REPEATING_CURSOR);
        if cursor.is_some() && !repeats {
            return Err(self.invalid_params("invalid cursor: this server issues none"));
        }
        let mut tools = self.state.tools.for_version(version).to_vec();
        if crate::injected!(self.state.config, DuplicateToolName) {
            tools.extend(tools.clone());
        }
        let mut result = ListToolsResult::with_all_items(tools);
        if crate::injected!(self.state.config, RepeatingToolPages) {
            // Every page, however it was asked for, is the first one again and points
            // to itself.
            result.next_cursor = Some(REPEATING_CURSOR.into());
        }
        Ok(result)
    }

    /// `tools/call` for `caller` at a protocol version: what rmcp's `call_tool` runs in
    /// a session, and what the 2026-07-28 stateless layer calls without building an
    /// rmcp service for the request.
    pub(super) async fn call(
        &self,
        request: CallToolRequestParams,
        caller: Option<&Authenticated>,
        version: &str,
    ) -> Result<CallToolResult, McpError> {
        if crate::injected!(self.state.config, OtherToolsOnly) {
            if request.name == OTHER_TOOL_NAME {
                return Ok(CallToolResult::success(vec![ContentBlock::text(
                    "A GitHub profile MCP server listing another tool.",
                )]));
            }
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        if request.name != TOOL_NAME {
            let message = format!("Unknown tool: {}", request.name);
            if crate::injected!(self.state.config, UnknownToolAsToolError) {
                return Ok(tool_error(message));
            }
            return Err(self.invalid_params(&message));
        }
        if request
            .arguments
            .as_ref()
            .is_some_and(|arguments| !arguments.is_empty())
        {
            // Input validation is a tool execution error (SEP-1303), so the model
            // that called the tool can read why and correct itself.
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{TOOL_NAME} takes no arguments"
            ))]));
        }
        let caller = caller
            .ok_or_else(|| McpError::internal_error("the request carried no caller", None))?;
        let mut result = self.profile(caller, version).await?;
        if crate::injected!(self.state.config, StructuredContentDiffersFromText)
            && let Some(Value::Object(structured)) = &mut result.structured_content
        {
            // A member the serialized text lacks: the text is no longer the same JSON.
            structured.insert("served_by".into(), json!("mcp-github-server"));
        }
        if crate::injected!(self.state.config, EmbeddedResourceWithoutCapability)
            && result.is_error != Some(true)
        {
            result.content.push(ContentBlock::embedded_text(
                format!("github://user/{}", caller.user.login),
                "The GitHub profile above, as a resource.",
            ));
        }
        if crate::injected!(self.state.config, ToolFailureLeaksTrace)
            && result.is_error == Some(true)
        {
            result.content.push(ContentBlock::text(
                "stack backtrace:\n   0: mcp_github_server::github::GitHub::user\n             \
                 at ./server/src/github.rs:88:17",
            ));
        }
        Ok(result)
    }

    async fn profile(
        &self,
        caller: &Authenticated,
        version: &str,
    ) -> Result<CallToolResult, McpError> {
        let state = &self.state;
        let Some((grant, cached)) = state.store.grant_with_profile(&caller.grant_id) else {
            return Ok(tool_error(
                "This authorization was revoked. Authorize the client again.".into(),
            ));
        };
        #[cfg(feature = "fault-injection")]
        let github_token = if crate::injected!(state.config, SendMcpTokenToGitHub) {
            caller.mcp_token.clone()
        } else if crate::injected!(state.config, GitHubTokenPerClient) {
            state
                .store
                .client_github_token(&grant.client_id)
                .unwrap_or_else(|| grant.github_token.clone())
        } else {
            grant.github_token.clone()
        };
        #[cfg(not(feature = "fault-injection"))]
        let github_token = grant.github_token.clone();

        let now = crate::store::now();
        let fresh = cached
            .as_ref()
            .filter(|cached| is_fresh(&state.config, cached, now));
        let profile = match fresh {
            Some(cached) => Ok(cached.profile.clone()),
            None => {
                self.revalidate(&caller.grant_id, &github_token, cached.as_ref(), now)
                    .await
            }
        };
        let mut profile = match profile {
            Ok(profile) => Value::clone(&profile),
            Err(error) => {
                let revoked = matches!(error, UpstreamError::Unauthorized)
                    && !crate::injected!(state.config, KeepGrantAfterGitHub401);
                if revoked {
                    // The GitHub token was revoked or expired: the MCP grant built on
                    // it is worthless now, so end it and make the client re-authorize
                    // (the third-party token lifecycle of the 2025-03-26 spec).
                    state.store.revoke_grant(&caller.grant_id);
                }
                if rpc_error_faults(&state.config, &error) {
                    return Err(McpError::internal_error(error.to_string(), None));
                }
                if revoked {
                    return Ok(tool_error(format!(
                        "GitHub no longer accepts the authorization of {}. Authorize the client again.",
                        grant.user.login
                    )));
                }
                return Ok(tool_error(format!(
                    "Could not read the GitHub profile: {error}."
                )));
            }
        };
        #[cfg(feature = "fault-injection")]
        if crate::injected!(state.config, ProfileCacheSharedAcrossUsers) {
            let mut cached = SHARED_PROFILE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            profile = cached.get_or_insert(profile).clone();
        }
        if crate::injected!(state.config, WrongUserProfile) {
            profile["login"] = json!(format!("not-{}", grant.user.login));
        }
        self.profile_result(profile, version)
    }

    /// The tool's result for a profile: the profile as JSON text and, from 2025-06-18, as
    /// structured content.
    pub(super) fn profile_result(
        &self,
        profile: Value,
        version: &str,
    ) -> Result<CallToolResult, McpError> {
        let text = serde_json::to_string(&profile)
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        if at_least(version, &ProtocolVersion::V_2025_06_18)
            || crate::injected!(self.state.config, StructuredContentInOldSessions)
        {
            let mut structured = profile;
            if crate::injected!(self.state.config, StructuredContentMismatch) {
                structured["id"] = json!(structured["id"].to_string());
            }
            result.structured_content = Some(structured);
        }
        Ok(result)
    }

    /// The grant's copy of the profile when `call` would answer `caller` from it as it
    /// stands, without asking GitHub: a `get_user_profile` call without arguments, the
    /// grant live and its copy within the freshness window. Only for a server without
    /// faults, where nothing else changes the answer.
    pub(super) fn fresh_profile(
        &self,
        request: &CallToolRequestParams,
        caller: &Authenticated,
    ) -> Option<CachedProfile> {
        let plain_call = request.name == TOOL_NAME
            && request
                .arguments
                .as_ref()
                .is_none_or(serde_json::Map::is_empty);
        if !plain_call {
            return None;
        }
        let cached = self.state.store.cached_profile(&caller.grant_id)?;
        is_fresh(&self.state.config, &cached, crate::store::now()).then_some(cached)
    }
}

impl ProfileServer {
    /// Asks GitHub whether the grant's profile changed, with `If-None-Match` when the
    /// server holds one, and keeps what GitHub confirmed with the grant.
    async fn revalidate(
        &self,
        grant_id: &str,
        github_token: &str,
        cached: Option<&CachedProfile>,
        now: tokio::time::Instant,
    ) -> Result<Arc<Value>, UpstreamError> {
        let etag = cached.and_then(|cached| cached.etag.as_deref());
        let (profile, etag) = match self
            .state
            .github
            .user_if_changed(github_token, etag)
            .await?
        {
            Revalidated::NotModified => match cached {
                Some(cached) => (cached.profile.clone(), cached.etag.clone()),
                None => return Err(UpstreamError::Malformed),
            },
            Revalidated::Changed(fetched) => (Arc::new(fetched.profile), fetched.etag),
        };
        self.state.store.cache_profile(
            grant_id,
            CachedProfile {
                profile: profile.clone(),
                etag,
                checked_at: now,
                rendered: Arc::default(),
            },
        );
        Ok(profile)
    }
}

/// The two faults that report a failed GitHub call as a JSON-RPC error instead of a
/// tool error. Each breaks one check: rate limits have their own. Without a fault the
/// answer is a tool error whatever the failure.
fn rpc_error_faults(config: &crate::Config, error: &UpstreamError) -> bool {
    match error {
        UpstreamError::RateLimited { .. } => crate::injected!(config, RateLimitAsRpcError),
        _ => crate::injected!(config, ToolFailureAsRpcError),
    }
}

/// Whether GitHub confirmed a cached profile within the freshness window, so that it can
/// be served without asking again. A window of zero (the default) asks every time.
fn is_fresh(config: &crate::Config, cached: &CachedProfile, now: tokio::time::Instant) -> bool {
    !config.profile_freshness.is_zero()
        && now.saturating_duration_since(cached.checked_at) < config.profile_freshness
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}
