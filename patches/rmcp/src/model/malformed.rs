//! [switchboard patch] What to answer to input that is not a message this side can take.
//!
//! JSON-RPC 2.0 §5.1 asks for an error response with a precise code: `-32700`
//! (with `"id": null`) for input that is not JSON, `-32600` for JSON that is no
//! valid request (keeping the request's `id` when it can be read), `-32601` for
//! an unknown method and `-32602` for a known method whose `params` do not fit.
//! A notification is never answered. The transports call [`reject_malformed`]
//! for bytes that did not deserialize as a message of the peer.

use serde::{Deserialize as _, de::DeserializeOwned};
use serde_json::Value;

use super::{
    ClientRequest, ConstString, ErrorData, JsonObject, Request, RequestId, RequestNoParam,
    RequestOptionalParam, ServerRequest,
};

/// A typed request: one whose method rmcp models with its own params type.
trait TypedRequest: DeserializeOwned {
    const METHOD: &'static str;
}

impl<M: ConstString, P> TypedRequest for Request<M, P>
where
    Self: DeserializeOwned,
{
    const METHOD: &'static str = M::VALUE;
}

impl<M: ConstString, P> TypedRequest for RequestOptionalParam<M, P>
where
    Self: DeserializeOwned,
{
    const METHOD: &'static str = M::VALUE;
}

impl<M: ConstString> TypedRequest for RequestNoParam<M>
where
    Self: DeserializeOwned,
{
    const METHOD: &'static str = M::VALUE;
}

/// Why `message` (a whole request object) does not deserialize as `T`, when `method` is `T`'s.
fn params_error<T: TypedRequest>(method: &str, message: &Value) -> Option<String> {
    (method == T::METHOD).then(|| match T::deserialize(message) {
        Err(e) => e.to_string(),
        Ok(_) => "the params do not fit this method".to_owned(),
    })
}

macro_rules! typed_requests {
    ($union:ident: $($T:ident),* $(,)?) => {
        impl $union {
            /// Whether `method` is one this union models with a typed variant. Such a
            /// method is never carried by its `CustomRequest` variant.
            pub(crate) fn is_typed_method(method: &str) -> bool {
                $(method == <super::$T as TypedRequest>::METHOD)||*
            }

            /// For a typed `method`, why the request object `message` does not fit it;
            /// `None` for a method this union does not model.
            pub(crate) fn typed_params_error(method: &str, message: &Value) -> Option<String> {
                None$(.or_else(|| params_error::<super::$T>(method, message)))*
            }
        }
    };
}

typed_requests!(ClientRequest:
    PingRequest,
    InitializeRequest,
    DiscoverRequest,
    CompleteRequest,
    SetLevelRequest,
    GetPromptRequest,
    ListPromptsRequest,
    ListResourcesRequest,
    ListResourceTemplatesRequest,
    ReadResourceRequest,
    SubscriptionsListenRequest,
    SubscribeRequest,
    UnsubscribeRequest,
    CallToolRequest,
    ListToolsRequest,
    GetTaskRequest,
    UpdateTaskRequest,
    CancelTaskRequest,
    ListSkillsRequest,
    GetSkillRequest,
    ReadResourceDirectoryRequest,
);

typed_requests!(ServerRequest:
    PingRequest,
    CreateMessageRequest,
    ListRootsRequest,
    ElicitRequest,
);

/// Client requests the 2026-07-28 revision removed: a request of that revision does not know
/// them, and is answered `-32601` for them (SEP-2575).
const REMOVED_IN_2026_07_28: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// Whether a request's `_meta` declares the 2026-07-28 revision or a later one.
fn declares_2026_07_28(meta: Option<&JsonObject>) -> bool {
    meta.and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
        .and_then(Value::as_str)
        .is_some_and(|v| v >= super::ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether a `CustomRequest` may carry `method` (with `params`' `_meta` as sent): not when
/// rmcp has a typed request for it in either direction, so a known method whose params do not
/// fit fails to deserialize (and is answered `-32602`) instead of reaching
/// `on_custom_request` (and being answered `-32601`). A method the request's own revision
/// removed is no known method: it stays a custom request, answered `-32601`.
pub(crate) fn custom_request_may_carry(method: &str, meta: Option<&JsonObject>) -> bool {
    let typed = ClientRequest::is_typed_method(method) || ServerRequest::is_typed_method(method);
    !typed || (REMOVED_IN_2026_07_28.contains(&method) && declares_2026_07_28(meta))
}

/// The answer to input that did not deserialize as a message of the peer.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub(crate) error: ErrorData,
    /// The id of the request, when the input has one that can be read.
    pub(crate) id: Option<RequestId>,
    /// False for input that must not be answered over a message stream: a notification
    /// (JSON-RPC never answers one) or a response (whose id is one of ours; an error with it
    /// would read as the answer to our own request). HTTP still refuses it with a 4xx status.
    pub(crate) answer: bool,
}

/// Classifies `bytes` that did not deserialize as a message (a transport that ignores a UTF-8
/// byte order mark passes them without it). `peer_is_client`: the peer's requests are
/// [`ClientRequest`]s (this side is the server), else [`ServerRequest`]s.
pub(crate) fn reject_malformed(bytes: &[u8], peer_is_client: bool) -> Rejection {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => return answer(None, ErrorData::parse_error(format!("Parse error: {e}"), None)),
    };
    let Value::Object(object) = &value else {
        let why = if value.is_array() {
            "Invalid Request: batches are not supported"
        } else {
            "Invalid Request: a message is a JSON object"
        };
        return answer(None, ErrorData::invalid_request(why, None));
    };
    let id = object.get("id").and_then(|id| RequestId::deserialize(id).ok());
    let answered_or_failed = object.contains_key("result") || object.contains_key("error");
    let version_ok = object.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let invalid = |why: &str| ErrorData::invalid_request(format!("Invalid Request: {why}"), None);
    match object.get("method") {
        None if answered_or_failed => Rejection {
            error: invalid("malformed response"),
            id: None,
            answer: false,
        },
        Some(Value::String(method)) if version_ok && !answered_or_failed => {
            match object.get("id") {
                None => Rejection {
                    error: ErrorData::invalid_params(
                        format!("Invalid params for notification {method}: params must be an object"),
                        None,
                    ),
                    id: None,
                    answer: false,
                },
                Some(_) if id.is_none() => {
                    answer(None, invalid("id must be a string or an integer"))
                }
                Some(_) => {
                    let typed_params_error = if peer_is_client {
                        ClientRequest::typed_params_error
                    } else {
                        ServerRequest::typed_params_error
                    };
                    let removed = REMOVED_IN_2026_07_28.contains(&method.as_str())
                        && declares_2026_07_28(
                            value.pointer("/params/_meta").and_then(Value::as_object),
                        );
                    let typed = if removed {
                        None
                    } else {
                        typed_params_error(method, &value)
                    };
                    let error = match typed {
                        Some(why) => {
                            // Said plainly, not as serde's "expected struct WithMeta".
                            let why = match object.get("params") {
                                Some(p) if !p.is_object() && !p.is_null() => {
                                    "params must be an object".to_owned()
                                }
                                _ => why,
                            };
                            ErrorData::invalid_params(
                                format!("Invalid params for {method}: {why}"),
                                None,
                            )
                        }
                        None => ErrorData::new(
                            super::ErrorCode::METHOD_NOT_FOUND,
                            format!("Method not found: {method}"),
                            None,
                        ),
                    };
                    answer(id, error)
                }
            }
        }
        method => {
            let why = if !version_ok {
                "jsonrpc must be \"2.0\""
            } else if method.is_some_and(|m| !m.is_string()) {
                "method must be a string"
            } else if method.is_some() {
                "a request has no result or error"
            } else {
                "not a request, notification or response"
            };
            answer(id, invalid(why))
        }
    }
}

fn answer(id: Option<RequestId>, error: ErrorData) -> Rejection {
    Rejection {
        error,
        id,
        answer: true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::ErrorCode;

    fn reject(input: &str) -> (i32, Option<RequestId>, bool) {
        let r = reject_malformed(input.as_bytes(), true);
        (r.error.code.0, r.id, r.answer)
    }

    #[test]
    fn not_json_is_a_parse_error_without_id() {
        assert_eq!(reject("not json"), (ErrorCode::PARSE_ERROR.0, None, true));
        assert_eq!(reject("{\"id\":1,"), (ErrorCode::PARSE_ERROR.0, None, true));
    }

    #[test]
    fn invalid_requests_keep_a_readable_id() {
        let n = RequestId::Number;
        assert_eq!(
            reject(r#"{"id":5,"method":"tools/list"}"#),
            (ErrorCode::INVALID_REQUEST.0, Some(n(5)), true)
        );
        assert_eq!(
            reject(r#"{"jsonrpc":"2.0","id":"a","method":7}"#),
            (
                ErrorCode::INVALID_REQUEST.0,
                Some(RequestId::String("a".into())),
                true
            )
        );
        assert_eq!(
            reject(r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#),
            (ErrorCode::INVALID_REQUEST.0, None, true)
        );
        assert_eq!(reject("[]"), (ErrorCode::INVALID_REQUEST.0, None, true));
        assert_eq!(reject("3"), (ErrorCode::INVALID_REQUEST.0, None, true));
    }

    #[test]
    fn known_methods_with_bad_params_are_invalid_params() {
        let (code, id, answer) =
            reject(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":"x"}"#);
        assert_eq!((code, id, answer), (ErrorCode::INVALID_PARAMS.0, Some(RequestId::Number(2)), true));
        let (code, ..) = reject(r#"{"jsonrpc":"2.0","id":2,"method":"nope","params":"x"}"#);
        assert_eq!(code, ErrorCode::METHOD_NOT_FOUND.0);
        // A server-to-client method is unknown to a server.
        let (code, ..) =
            reject(r#"{"jsonrpc":"2.0","id":2,"method":"roots/list","params":"x"}"#);
        assert_eq!(code, ErrorCode::METHOD_NOT_FOUND.0);
        // So is a method the request's own revision removed.
        let (code, ..) = reject(
            r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"x":[]}}"#,
        );
        assert_eq!(code, ErrorCode::METHOD_NOT_FOUND.0);
    }

    #[test]
    fn notifications_and_responses_are_not_answered() {
        assert!(!reject(r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":1}"#).2);
        assert!(!reject(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#).2);
    }

    #[test]
    fn a_known_method_never_becomes_a_custom_request() {
        let raw = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": null}});
        assert!(serde_json::from_value::<crate::model::ClientJsonRpcMessage>(raw.clone()).is_err());
        let rejection = reject_malformed(raw.to_string().as_bytes(), true);
        assert_eq!(rejection.error.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(rejection.id, Some(RequestId::Number(3)));
        let custom = json!({"jsonrpc": "2.0", "id": 4, "method": "acme/thing", "params": {"a": 1}});
        assert!(serde_json::from_value::<crate::model::ClientJsonRpcMessage>(custom).is_ok());
        // A method its revision removed reaches the handler, which does not know it.
        let removed = json!({"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        assert!(matches!(
            serde_json::from_value::<crate::model::ClientJsonRpcMessage>(removed),
            Ok(crate::model::ClientJsonRpcMessage::Request(r))
                if matches!(r.request, ClientRequest::CustomRequest(_))
        ));
    }
}
