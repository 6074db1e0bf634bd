//! The commands `connect` understands, given once on the command line or one per line at its
//! prompt.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::Value;

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Tools,
    Call { name: String, arguments: Value },
    Whoami,
    Refresh,
    Revoke,
    Logout,
    Help,
    Quit,
}

pub const HELP: &str = "\
commands:
  tools                 list the server's tools
  call NAME [JSON]      call a tool with JSON arguments (default {})
  whoami                who the server says you are, and the token's scope and expiry
  refresh               refresh the access token now
  revoke                revoke the tokens at the server and forget them
  logout                forget the tokens (the server is not told)
  help                  this list
  quit                  leave";

/// Parses a line (or the one-shot words joined by spaces); `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    let bare = |command: Command| {
        if rest.is_empty() {
            Ok(Some(command))
        } else {
            Err(format!("{word} takes no arguments"))
        }
    };
    match word {
        "tools" => bare(Command::Tools),
        "whoami" => bare(Command::Whoami),
        "refresh" => bare(Command::Refresh),
        "revoke" => bare(Command::Revoke),
        "logout" => bare(Command::Logout),
        "help" | "?" => bare(Command::Help),
        "quit" | "exit" => bare(Command::Quit),
        "call" => {
            let (name, json) = match rest.split_once(char::is_whitespace) {
                Some((name, json)) => (name, json.trim()),
                None => (rest, ""),
            };
            if name.is_empty() {
                return Err("usage: call NAME [JSON]".into());
            }
            let arguments = if json.is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str::<Value>(json)
                    .map_err(|e| format!("the arguments are not JSON: {e}"))?
            };
            if !arguments.is_object() {
                return Err("the arguments must be a JSON object".into());
            }
            Ok(Some(Command::Call {
                name: name.to_owned(),
                arguments,
            }))
        }
        other => Err(format!("unknown command {other:?}; try help")),
    }
}

/// Reads lines from stdin on a thread of its own (stdin has no async reader in this build), so
/// the runtime keeps serving while the user types.
pub fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Shows the prompt when a person is typing (not when commands are piped in).
pub fn prompt() {
    if std::io::stdin().is_terminal() {
        print!("mcp> ");
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_and_their_arguments_are_parsed() {
        assert_eq!(parse("  tools "), Ok(Some(Command::Tools)));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(
            parse(r#"call get_user_profile {"a": "b c"}"#),
            Ok(Some(Command::Call {
                name: "get_user_profile".into(),
                arguments: json!({"a": "b c"})
            }))
        );
        assert_eq!(
            parse("call get_user_profile"),
            Ok(Some(Command::Call {
                name: "get_user_profile".into(),
                arguments: json!({})
            }))
        );
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        assert!(parse("call").unwrap_err().contains("usage"));
        assert!(parse("call x {nope").unwrap_err().contains("not JSON"));
        assert!(parse("call x [1]").unwrap_err().contains("object"));
        assert!(parse("tools now").unwrap_err().contains("no arguments"));
        assert!(parse("dance").unwrap_err().contains("unknown"));
    }
}
