//! The MCP server proper, on the official Rust SDK: one tool, `get_user_profile`,
//! the same on both transports.

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, ErrorCode, Implementation, InitializeRequestParams, InitializeResult,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
        Tool, ToolAnnotations,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::{
    AppState,
    github::{Revalidated, UpstreamError},
    resource::Authenticated,
    store::CachedProfile,
};

pub const TOOL_NAME: &str = "get_user_profile";
/// The one tool of the `other-tools-only` variant.
const OTHER_TOOL_NAME: &str = "describe_server";

#[derive(Clone)]
pub struct ProfileServer {
    state: AppState,
}

impl ProfileServer {
    pub fn new(state: AppState) -> ProfileServer {
        ProfileServer { state }
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
    match context.protocol_version() {
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

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        if crate::injected!(self.state.config, UnlistedProfileTool) {
            return Ok(ListToolsResult::with_all_items(Vec::new()));
        }
        // Every tool fits on one page, so the server never issues a cursor and any
        // cursor a client sends is invalid: "Invalid cursors SHOULD result in an error
        // with code -32602 (Invalid params)" (pagination utility).
        if request.is_some_and(|request| request.cursor.is_some()) {
            return Err(self.invalid_params("invalid cursor: this server issues none"));
        }
        let version = negotiated_version(&context);
        Ok(ListToolsResult::with_all_items(
            self.state.tools.for_version(&version).to_vec(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if crate::injected!(self.state.config, OtherToolsOnly) {
            if request.name == OTHER_TOOL_NAME {
                return Ok(CallToolResult::success(vec![ContentBlock::text(
                    "A GitHub profile MCP server listing another tool.",
                )])
                .into());
            }
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        if request.name != TOOL_NAME {
            let message = format!("Unknown tool: {}", request.name);
            if crate::injected!(self.state.config, UnknownToolAsToolError) {
                return Ok(tool_error(message).into());
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
            ))])
            .into());
        }
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Authenticated>())
            .cloned()
            .ok_or_else(|| McpError::internal_error("the request carried no caller", None))?;
        let version = negotiated_version(&context);
        self.profile(&caller, &version).await.map(Into::into)
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

impl ProfileServer {
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
        let fresh = cached.as_ref().filter(|cached| {
            !state.config.profile_freshness.is_zero()
                && now.saturating_duration_since(cached.checked_at) < state.config.profile_freshness
        });
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
                // Each fault breaks one check: rate limits have their own.
                let as_rpc_error = match error {
                    UpstreamError::RateLimited { .. } => {
                        crate::injected!(state.config, RateLimitAsRpcError)
                    }
                    _ => crate::injected!(state.config, ToolFailureAsRpcError),
                };
                if as_rpc_error {
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
        if crate::injected!(state.config, WrongUserProfile) {
            profile["login"] = json!(format!("not-{}", grant.user.login));
        }
        let text = serde_json::to_string(&profile)
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        if at_least(version, &ProtocolVersion::V_2025_06_18)
            || crate::injected!(state.config, StructuredContentInOldSessions)
        {
            let mut structured = profile;
            if crate::injected!(state.config, StructuredContentMismatch) {
                structured["id"] = json!(structured["id"].to_string());
            }
            result.structured_content = Some(structured);
        }
        Ok(result)
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
            },
        );
        Ok(profile)
    }
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}
