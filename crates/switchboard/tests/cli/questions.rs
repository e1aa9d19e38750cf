//! Grounded questions and answers between real sessions, and with a human at the CLI.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, eventually};
use crate::mcp_client::{Agent, Kind, text};

async fn ready(home: &Home, names: &[(&str, Kind)]) -> Vec<Agent> {
    let mut agents = Vec::new();
    for (name, kind) in names {
        let a = Agent::start(home, name, *kind).await;
        a.ok("peers", json!({})).await;
        agents.push(a);
    }
    agents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn question_pushed_to_b_and_grounded_answer_pushed_back_to_a() {
    let home = Home::new();
    let agents = ready(
        &home,
        &[("alice", Kind::ClaudeCode), ("bob", Kind::ClaudeCode)],
    )
    .await;
    let (a, b) = (&agents[0], &agents[1]);
    let q = a
        .ok(
            "ask",
            json!({"to": "bob", "question": "How are sessions invalidated?",
                          "context_hint": "src/auth, logout"}),
        )
        .await;
    let id = q["id"].as_i64().unwrap();
    assert_eq!(q["state"], "open");

    let pushed = b.pushes(1).await;
    assert_eq!(pushed[0]["meta"]["kind"], "question");
    let content = pushed[0]["content"].as_str().unwrap();
    assert!(content.contains("QUESTION from alice"), "{content}");
    assert!(
        content.contains("context hint: src/auth, logout"),
        "{content}"
    );
    assert!(
        content.contains("basis=verified only if you checked"),
        "{content}"
    );

    let answered = b
        .ok("answer", json!({"id": id, "text": "Deleted from the store on logout.",
                             "basis": "verified", "sources": ["src/auth/session.ts:42", "a1b2c3d"]}))
        .await;
    assert_eq!(answered["state"], "answered");

    let back = a.pushes(1).await;
    assert_eq!(back[0]["meta"]["kind"], "answer");
    assert_eq!(back[0]["meta"]["reply_to"], id.to_string());
    let content = back[0]["content"].as_str().unwrap();
    let basis = content
        .find("Basis: verified. Sources: src/auth/session.ts:42, a1b2c3d")
        .unwrap();
    let claim = content.find("Deleted from the store on logout.").unwrap();
    assert!(basis < claim, "basis and sources come first: {content}");
    assert!(content.contains("verify before relying on it"), "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_push_the_question_rides_a_tool_result_and_the_asker_waits_for_the_answer() {
    let home = Home::new();
    let mut agents = ready(&home, &[("alice", Kind::Codex), ("bob", Kind::Codex)]).await;
    let b = agents.pop().unwrap();
    let a = agents.pop().unwrap();
    let asking = tokio::spawn(async move {
        let out = a
            .ok(
                "ask",
                json!({"to": "bob", "question": "Which port does the API use?", "wait": 120}),
            )
            .await;
        (out, a)
    });
    let id = eventually("the question rides bob's next tool result", || async {
        let r = b.call("peers", json!({})).await;
        let inbox = r.structured_content.clone().unwrap_or(Value::Null)["inbox"].clone();
        let found = inbox.as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["kind"] == "question")
                .map(|i| i["id"].as_i64().unwrap())
        });
        if found.is_some() {
            assert!(text(&r).contains("QUESTION from alice"), "{}", text(&r));
        }
        found
    })
    .await;
    b.ok(
        "answer",
        json!({"id": id, "text": "8080", "basis": "from_memory"}),
    )
    .await;
    let (out, a) = tokio::time::timeout(Duration::from_secs(60), asking)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out["state"], "answered",
        "ask with wait returns the answer: {out}"
    );
    assert_eq!(out["answer"]["basis"], "from_memory");
    assert_eq!(out["answer"]["text"], "8080");

    let again = b
        .call(
            "answer",
            json!({"id": id, "text": "9090", "basis": "verified"}),
        )
        .await;
    assert_eq!(again.is_error, Some(true));
    assert!(
        text(&again).contains("already answered"),
        "{}",
        text(&again)
    );
    let listed = a.ok("questions", json!({"id": id})).await;
    assert_eq!(
        listed["questions"][0]["answer"]["text"], "8080",
        "the first answer stands"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_and_wrong_answerer_and_bad_input_get_clear_errors() {
    let home = Home::new();
    let agents = ready(
        &home,
        &[
            ("alice", Kind::Codex),
            ("bob", Kind::Codex),
            ("carol", Kind::Codex),
        ],
    )
    .await;
    let (a, b, c) = (&agents[0], &agents[1], &agents[2]);
    let q = a
        .ok("ask", json!({"to": "bob", "question": "Prod password?"}))
        .await;
    let id = q["id"].as_i64().unwrap();
    let wrong = c
        .call(
            "answer",
            json!({"id": id, "text": "hunter2", "basis": "from_memory"}),
        )
        .await;
    assert!(
        text(&wrong).contains("was asked to 'bob', not to you"),
        "{}",
        text(&wrong)
    );
    let declined = b
        .ok("answer", json!({"id": id, "decline": "not mine to share"}))
        .await;
    assert_eq!(declined["state"], "declined");
    let seen = a.call("peers", json!({})).await;
    assert!(text(&seen).contains("DECLINED by bob"), "{}", text(&seen));

    let sources: Vec<String> = (0..21).map(|i| format!("f{i}.rs")).collect();
    let cases = [
        (
            "ask",
            json!({"to": "bob", "question": "  "}),
            "question is empty",
        ),
        (
            "ask",
            json!({"to": "bob", "question": "x", "context_hint": "h".repeat(8193)}),
            "context_hint is 8193 bytes",
        ),
        (
            "answer",
            json!({"id": 424242, "text": "x", "basis": "verified"}),
            "no question 424242",
        ),
        ("answer", json!({"id": id, "text": "x"}), "give `basis`"),
        (
            "answer",
            json!({"id": id, "text": "x", "basis": "verified", "sources": sources}),
            "sources: 21 given, at most 20",
        ),
        (
            "answer",
            json!({"id": id, "text": "x", "basis": "verified", "sources": ["s".repeat(257)]}),
            "a source is 257 bytes",
        ),
        (
            "answer",
            json!({"id": id, "text": "x", "basis": "guessed"}),
            "unknown variant `guessed`",
        ),
    ];
    for (tool, args, expected) in cases {
        let r = a.call(tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}");
        assert!(text(&r).contains(expected), "{tool}: {}", text(&r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_answers_an_agents_question_from_the_cli() {
    let home = Home::new();
    home.json("dana", &["status"]);
    home.json("dana", &["inbox"]);
    let agents = ready(&home, &[("alice", Kind::Codex)]).await;
    let a = &agents[0];
    let q = a
        .ok(
            "ask",
            json!({"to": "dana", "question": "Ship today or Monday?"}),
        )
        .await;
    let id = q["id"].as_i64().unwrap();
    let open = home.json("dana", &["questions", "--open"]);
    assert_eq!(open[0]["id"], id);
    let answered = home.json(
        "dana",
        &[
            "answer",
            &id.to_string(),
            "Monday",
            "--basis",
            "verified",
            "--source",
            "release-plan.md",
        ],
    );
    assert_eq!(answered["state"], "answered");
    let seen = a.call("peers", json!({})).await;
    let shown = text(&seen);
    assert!(
        shown.contains("ANSWER from dana") && shown.contains("Sources: release-plan.md"),
        "{shown}"
    );
    let dup = home.run(
        "dana",
        &["answer", &id.to_string(), "Today", "--basis", "verified"],
    );
    assert_eq!(dup.status.code(), Some(6));
}

#[test]
fn an_unanswered_question_expires_and_the_asker_is_told() {
    let home = Home::new();
    home.json("bob", &["inbox"]);
    let q = home.json("alice", &["ask", "bob", "Anyone there?", "--ttl", "200ms"]);
    let id = q["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let listed = home.json("alice", &["questions", &id.to_string()]);
    assert_eq!(listed[0]["state"], "expired");
    let told = home.json("alice", &["inbox"]);
    assert_eq!(told[0]["kind"], "expired");
    assert_eq!(told[0]["reply_to"], id);
    let late = home.run(
        "bob",
        &["answer", &id.to_string(), "yes", "--basis", "verified"],
    );
    assert_eq!(late.status.code(), Some(6));
    assert!(crate::harness::stderr(&late).contains("already expired"));
}

#[test]
fn the_cli_takes_from_memory_spelled_as_a_flag_value() {
    let home = Home::new();
    home.json("bob", &["inbox"]);
    let id = home.json("alice", &["ask", "bob", "Which port?"])["id"]
        .as_i64()
        .unwrap();
    let answered = home.json(
        "bob",
        &["answer", &id.to_string(), "8080", "--basis", "from-memory"],
    );
    assert_eq!(answered["answer"]["basis"], "from_memory");
}
