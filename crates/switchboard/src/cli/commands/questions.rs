//! `switchboard ask`, `answer` and `questions`: the human's side of grounded Q&A.

use switchboard_core::{Ask, QuestionQuery, Reply, Run, op};
use switchboard_mcp::framing;
use switchboard_proto::{Basis, QuestionView};

use super::super::args::{AnswerArgs, AskArgs, QuestionsArgs};
use super::super::{CliError, Context, output};
use super::send::message_text;

pub async fn ask(ctx: &Context, args: AskArgs) -> Result<(), CliError> {
    let me = super::operator(ctx).await?;
    let ask = Ask {
        to: args.peer,
        question: message_text(args.question)?,
        context_hint: args.context,
        ttl: args.ttl,
    };
    let mut q = ctx.mailbox.ask(me.id, ask).await?;
    if let Some(wait) = args.wait {
        let (peer, id) = (Some(me.id), q.id);
        output::progress(format!(
            "asked {} (question {id}); waiting up to {} for the answer…",
            q.to,
            output::duration(wait)
        ));
        q = ctx.mailbox.run(op::Question { peer, id, wait }).await?;
    }
    show_one(ctx, &q)
}

pub async fn answer(ctx: &Context, args: AnswerArgs) -> Result<(), CliError> {
    let me = super::operator(ctx).await?;
    let reply = match args.decline {
        Some(reason) => Reply::Decline { reason },
        None => Reply::Answer {
            text: message_text(args.text)?,
            basis: args
                .basis
                .as_deref()
                .unwrap_or_default()
                // The CLI spells it from-memory too, as flags usually are.
                .replace('-', "_")
                .parse::<Basis>()
                .map_err(|e| CliError::BadInput(e.to_string()))?,
            sources: args.sources,
        },
    };
    let q = ctx.mailbox.reply(me.id, args.id, reply).await?;
    show_one(ctx, &q)
}

pub async fn list(ctx: &Context, args: QuestionsArgs) -> Result<(), CliError> {
    let me = super::operator(ctx).await?;
    let found = match (args.id, args.wait) {
        (Some(id), wait) => {
            let (peer, wait) = (Some(me.id), wait.unwrap_or_default());
            if !wait.is_zero() {
                output::progress(format!(
                    "waiting up to {} for question {id} to be answered…",
                    output::duration(wait)
                ));
            }
            vec![ctx.mailbox.run(op::Question { peer, id, wait }).await?]
        }
        (None, _) => {
            let query = QuestionQuery {
                asked: true,
                received: true,
                open_only: args.open,
                limit: args.limit,
            };
            ctx.mailbox.questions(me.id, query).await?
        }
    };
    show(ctx, &found)
}

fn show_one(ctx: &Context, q: &QuestionView) -> Result<(), CliError> {
    if ctx.json {
        output::json(q)
    } else {
        output::line(framing::question(q))
    }
}

/// Always a JSON array, even for one id, so scripts read one shape.
fn show(ctx: &Context, questions: &[QuestionView]) -> Result<(), CliError> {
    if ctx.json {
        return output::json(questions);
    }
    if questions.is_empty() {
        return output::line("no questions");
    }
    match questions {
        [one] => output::line(framing::question(one)),
        _ => output::questions(questions),
    }
}
