//! The texts of the notices a store writes on a peer's behalf. Every backend writes the same
//! words, so an agent reads the same thing whichever store its relay runs on.

use switchboard_proto::{JobId, JobState, QuestionId};

/// Told to a dispatcher when its job reaches a final state: the id and the state, never the
/// prompt or the result.
pub fn job_settled(id: JobId, agent: &str, state: JobState) -> String {
    format!("Job #{id} for {agent} is {state}.")
}

/// Told to an asker whose question passed its TTL unanswered.
pub fn question_expired(question: QuestionId, asked: &str) -> String {
    format!("Your question #{question} to {asked} expired unanswered.")
}
