//! Command-line arguments (clap derive). The help text is the CLI's manual.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard_proto::{JobId, MessageId, QuestionId, Scope};

/// The heading every global option is listed under, after the command's own options.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Let AI coding agents find each other and exchange messages, without merging their contexts.",
    after_help = "Exit codes: 0 ok, 1 failure, 2 bad input, 3 unknown peer, message, question, \
                  job or session, 4 a limit was hit (pending cap, rate limit), 5 the store is \
                  unusable until someone acts (disk full, corrupt, read-only, too new, cannot be \
                  opened), 6 refused by the state of things (a question already answered, or \
                  asked to someone else), 7 the relay refused the token or the action for it, \
                  8 temporarily unavailable (store locked, relay unreachable or restarting): \
                  the same command may work if run again shortly."
)]
pub struct Cli {
    /// Store directory [env: SWITCHBOARD_HOME] [default: the platform data dir]
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    pub home: Option<PathBuf>,

    /// Print machine-readable JSON instead of text
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Act as this operator peer instead of the default (settings `operator`, else $USER)
    #[arg(long = "as", global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub as_name: Option<String>,

    /// Use the relay at this URL instead of the local store (default: the one `login` stored;
    /// an empty value means the local store)
    #[arg(long, global = true, env = "SWITCHBOARD_RELAY", value_name = "URL",
          hide_env_values = true, help_heading = GLOBAL)]
    pub relay: Option<String>,

    /// The token for --relay (default: the one `login` stored)
    #[arg(long, global = true, env = "SWITCHBOARD_TOKEN", value_name = "TOKEN",
          hide_env_values = true, help_heading = GLOBAL)]
    pub token: Option<String>,

    /// Also trust the CA certificate(s) in this PEM file for --relay (a private certificate)
    #[arg(long, global = true, env = "SWITCHBOARD_RELAY_CA", value_name = "FILE",
          hide_env_values = true, help_heading = GLOBAL)]
    pub relay_ca: Option<PathBuf>,

    /// The relay's database for serve, tokens, migrate and doctor: `postgres://…` for a team
    /// relay of several replicas [default: embedded SQLite in the store directory]
    #[arg(long, global = true, env = "SWITCHBOARD_DATABASE_URL", value_name = "URL",
          hide_env_values = true, help_heading = GLOBAL)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Two agent sessions on a throwaway store exchange a message, a question and a job, and
    /// the timeline shows each step's latency (touches none of your data)
    Demo(DemoArgs),
    /// Show the store, the peers online, the message and job counts
    Status,
    /// List peers: who is there, online or not, and what they are doing
    Peers(PeersArgs),
    /// Send a message to a peer (durable before this returns)
    Send(SendArgs),
    /// Send a message to every live peer in a scope
    Broadcast(BroadcastArgs),
    /// Show your unread messages, then acknowledge them
    Inbox(InboxArgs),
    /// Show what you sent and where each copy stands (queued, delivered, read, expired, dead)
    Sent(SentArgs),
    /// Print messages live as they arrive, for one peer or the whole room
    Watch(WatchArgs),
    /// Ask a peer a question; its answer comes back with sources and a basis
    Ask(AskArgs),
    /// Answer (or decline) a question asked to you, once
    Answer(AnswerArgs),
    /// Questions you asked or received, open and answered
    Questions(QuestionsArgs),
    /// Reserve paths of this repository you are changing: others are refused them until you
    /// release them or the TTL ends (the git pre-commit hook holds commits to it)
    Reserve(ReserveArgs),
    /// Give reservations back: by id, or all of yours in this repository (--all: everywhere)
    Release(ReleaseArgs),
    /// Who holds which paths of this repository, why and until when (--all: every repository)
    Reservations(ReservationsArgs),
    /// Run jobs addressed to an agent name with a command (prompt on stdin or as {prompt})
    Worker(WorkerArgs),
    /// Durable jobs: dispatch, list, show, cancel, recover, retry
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Expire messages past their TTL and delete records past retention
    Gc,
    /// Serve one agent session over stdio (what MCP clients spawn); with --relay, through a relay
    Mcp(McpArgs),
    /// Run the relay for agents on other machines: MCP at /mcp, JSON API at /v1, /healthz, /metrics
    Serve(ServeArgs),
    /// Watch this machine's agents in a browser: serves the dashboard on loopback and opens it
    /// with a one-time sign-in link (on a relay, opens the relay's own dashboard)
    Dashboard(DashboardArgs),
    /// Bring the relay's database (every room, the tokens) to this version's schema
    Migrate,
    /// The relay's tokens: create (shown once), list, revoke
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Register switchboard with an agent client (or, with `git`, this repository's
    /// pre-commit hook): prints the entries; --write merges them in, --remove takes them out
    Setup(SetupArgs),
    /// Store a relay's URL and token (file mode 0600) for every command and client set-up
    Login(LoginArgs),
    /// Forget the stored relay login: commands use the local store again
    Logout,
    /// Check that a relay answers (GET /livez; needs no token): exit 0 when it does
    Ping(PingArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `switchboard man | man -l -`
    Man,
    /// Check the store and every client's registration, and say how to fix what is missing
    Doctor,
    /// Hook commands for agent clients (they read the hook's JSON on stdin)
    Hook {
        #[command(subcommand)]
        client: HookClient,
    },
    /// Internal: the worker runs each job's command through this, so the command dies with the
    /// worker (see `worker::guard`). Hidden: nobody runs it by hand.
    #[command(name = "job-guard", hide = true)]
    JobGuard(JobGuardArgs),
}

#[derive(Debug, Args)]
pub struct ReserveArgs {
    /// Paths or globs from the repository's root, as git shows them: `src/api` (and what is
    /// under it), `src/*.rs`, `docs/**/*.md`
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Why: whoever is refused reads it
    #[arg(long, required = true)]
    pub reason: String,
    /// Let other shared reservations of these paths stand beside this one
    #[arg(long)]
    pub shared: bool,
    /// How long it holds unless released [default: 1h]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// Wait up to this long (at most 240s) for conflicting reservations to end
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
    /// The repository: a directory inside it [default: the current directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Reservation ids (see `reservations`); none: all of yours in this repository
    #[arg(value_name = "ID")]
    pub ids: Vec<switchboard_proto::ReservationId>,
    /// All of yours, in every repository
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// The repository: a directory inside it [default: the current directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReservationsArgs {
    /// Every repository's, not only this one's
    #[arg(long)]
    pub all: bool,
    /// The repository: a directory inside it [default: the current directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's store directory instead of deleting it, and print where it is
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The relay's URL, e.g. https://relay.example.com:7700
    pub url: String,
    /// The token the relay's admin minted for you (`tokens create`); `-` reads it from stdin
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// Check nothing: store the login without asking the relay whether the token works
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The relay's URL (default: --relay, or the stored login)
    pub url: Option<String>,
    /// Give up after this long
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct JobGuardArgs {
    /// The worker's process id: when it is gone, so is the job.
    #[arg(long)]
    pub parent: u32,
    pub program: std::ffi::OsString,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Loopback address to serve the page on; port 0 picks a free one
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Print the sign-in link without opening a browser
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs a token minted first
    #[arg(
        long,
        env = "SWITCHBOARD_LISTEN",
        default_value = "127.0.0.1:7700",
        hide_env_values = true
    )]
    pub listen: std::net::SocketAddr,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS
    #[arg(
        long,
        env = "SWITCHBOARD_TLS_CERT",
        hide_env_values = true,
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(
        long,
        env = "SWITCHBOARD_TLS_KEY",
        hide_env_values = true,
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// A host name clients reach the relay by (checked against Host: DNS rebinding); repeat it;
    /// `*` accepts any [default: localhost, 127.0.0.1, ::1]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// A browser origin allowed to call the relay (`https://host:port`); repeat it [default: none]
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Largest request body in bytes
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub body_limit: usize,
    /// A remote session nobody holds (no event stream, no MCP connection) ends after this
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub session_idle: Duration,
    /// Most Postgres connections this replica pools for reads (with --database-url; one more
    /// listens and one more carries the writes)
    #[arg(
        long,
        env = "SWITCHBOARD_DB_POOL",
        hide_env_values = true,
        default_value_t = 16,
        value_name = "N"
    )]
    pub db_pool: usize,
    /// How long connecting to Postgres, or waiting for a pooled connection, may take
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub db_timeout: Duration,
    /// Test only: `/mcp` also serves the fixtures of the official MCP conformance suite and
    /// admits requests without a token (room `conformance`); loopback addresses only. Hidden:
    /// it is for the conformance test, not for anyone running a relay. Test equipment: only
    /// in builds with the `fixtures` feature, which tests turn on and release builds don't.
    #[cfg(feature = "fixtures")]
    #[arg(long, hide = true)]
    pub conformance_fixtures: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Mint a token and print it once: a room token (any peer, self-asserted names), a peer
    /// token (exactly one peer: the sender identity comes from the token) or an admin token
    Create(TokenCreateArgs),
    /// List tokens (never their secrets)
    List,
    /// Revoke a token by id; it stops working at once
    Revoke {
        /// The token id (the part after `swb_`, before the second `_`), as `tokens list` shows
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The room the token belongs to (rooms are created by their first token)
    #[arg(long, required_unless_present = "admin", value_name = "ROOM")]
    pub room: Option<String>,
    /// Make it a peer token for this peer name
    #[arg(long, requires = "room", value_name = "NAME")]
    pub peer: Option<String>,
    /// Make it an admin token (health and metrics, no room)
    #[arg(long, conflicts_with_all = ["room", "peer"])]
    pub admin: bool,
    /// A note for `tokens list` (who has it)
    #[arg(long, default_value = "")]
    pub label: String,
}

/// What `setup` registers switchboard with: an agent client, or a git repository's
/// pre-commit hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SetupTarget {
    ClaudeCode,
    Codex,
    ClaudeDesktop,
    Cursor,
    // The current repository's pre-commit hook (see the command's help): undocumented here so
    // the values stay one line in `--help`.
    Git,
}

impl SetupTarget {
    /// The agent client, when it is one.
    pub fn client(self) -> Option<crate::agent_config::AgentClient> {
        use crate::agent_config::AgentClient;
        match self {
            Self::ClaudeCode => Some(AgentClient::ClaudeCode),
            Self::Codex => Some(AgentClient::Codex),
            Self::ClaudeDesktop => Some(AgentClient::ClaudeDesktop),
            Self::Cursor => Some(AgentClient::Cursor),
            Self::Git => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    pub client: SetupTarget,
    /// With --relay: connect the client straight to the relay's /mcp (Streamable HTTP) instead
    /// of through a local `switchboard mcp --relay` (not for Claude Desktop)
    #[arg(long)]
    pub http: bool,
    /// Merge into the client's configuration (backed up first; other entries are kept)
    #[arg(long, conflicts_with = "remove")]
    pub write: bool,
    /// Take switchboard's entries out of the client's configuration (backed up first; other
    /// entries are kept)
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Subcommand)]
pub enum HookClient {
    /// Claude Code hooks: session-start and user-prompt-submit add new mail to the context;
    /// wait (async, asyncRewake, at session start and at stop) waits while the session is idle
    /// and wakes it with the mail (exit 2)
    Claude(ClaudeHookArgs),
    /// Codex hooks: session-start and user-prompt-submit add new mail to the context; stop
    /// keeps the turn going while new mail is there
    Codex(CodexHookArgs),
    /// Git hooks: pre-commit refuses a commit touching paths another live peer reserved
    /// exclusively (SWITCHBOARD_OVERRIDE="why" lets it through and tells the holder)
    Git(GitHookArgs),
}

#[derive(Debug, Args)]
pub struct GitHookArgs {
    pub event: GitHookEvent,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GitHookEvent {
    PreCommit,
}

#[derive(Debug, Args)]
pub struct ClaudeHookArgs {
    pub event: ClaudeHookEvent,
    /// How long `wait` waits for new mail before exiting quietly
    #[arg(long, default_value = "9m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ClaudeHookEvent {
    SessionStart,
    UserPromptSubmit,
    /// Waits for mail while the session is idle; exit 2 with the mail wakes it
    Wait,
    /// The same as `wait`, as earlier set-ups installed it on the Stop event
    Stop,
}

#[derive(Debug, Args)]
pub struct CodexHookArgs {
    pub event: CodexHookEvent,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CodexHookEvent {
    SessionStart,
    UserPromptSubmit,
    /// New mail keeps the ending turn going (`decision: block`)
    Stop,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The peer to ask
    pub peer: String,
    /// The question; `-` reads it from stdin
    #[arg(required = true, num_args = 1..)]
    pub question: Vec<String>,
    /// Where the answerer should look (files, an area of the code, a ticket)
    #[arg(long, value_name = "HINT")]
    pub context: Option<String>,
    /// Wait this long for the answer, e.g. 2m
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
    /// How long the question stays open [default: settings default_ttl]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The question's id (see `questions`)
    pub id: QuestionId,
    /// The answer; `-` reads it from stdin
    #[arg(num_args = 0.., required_unless_present = "decline")]
    pub text: Vec<String>,
    /// verified: you checked the sources just now; from-memory: you did not
    #[arg(long, value_parser = ["verified", "from-memory", "from_memory"], required_unless_present = "decline")]
    pub basis: Option<String>,
    /// A source: a path, file:line, a commit hash, a PR number, a doc name (repeat, up to 20)
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Decline instead of answering, with this reason
    #[arg(long, value_name = "REASON", conflicts_with_all = ["text", "basis", "sources"])]
    pub decline: Option<String>,
}

#[derive(Debug, Args)]
pub struct QuestionsArgs {
    /// One question; otherwise your recent questions, asked and received
    pub id: Option<QuestionId>,
    /// Only open questions
    #[arg(long)]
    pub open: bool,
    /// With an id: wait this long for its answer
    #[arg(long, value_parser = humantime::parse_duration, requires = "id", value_name = "DURATION")]
    pub wait: Option<Duration>,
    /// Most questions to list
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The agent name this worker serves (what dispatchers address); on a relay, a peer
    /// token must name this agent
    #[arg(long, value_name = "NAME")]
    pub agent: String,
    /// Also take write jobs (refused by default)
    #[arg(long)]
    pub allow_writes: bool,
    /// Jobs run at once
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// Run each write job in a fresh git worktree and report its branch
    #[arg(long)]
    pub worktree: bool,
    /// A ready-made command: codex (`codex exec`) or claude (`claude -p`)
    #[arg(long, value_enum, conflicts_with = "command")]
    pub preset: Option<crate::worker::Preset>,
    /// The command to run for each job, after `--`; `{prompt}` and `{model}` are filled in
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// Queue a job for whatever worker serves AGENT
    Dispatch {
        /// The agent name a worker serves (`switchboard worker --agent NAME`)
        agent: String,
        /// The task; `-` reads it from stdin
        #[arg(required = true, num_args = 1..)]
        prompt: Vec<String>,
        /// The model the worker's command should use (filled in as {model})
        #[arg(long)]
        model: Option<String>,
        /// The job may change files (only workers run with --allow-writes take it)
        #[arg(long)]
        write: bool,
        /// A path of this repository the job will change (repeat it): its worker reserves them
        /// while the job runs (needs --write)
        #[arg(long = "reserve", value_name = "PATH", requires = "write")]
        reserve: Vec<String>,
        /// Dispatching again with the same id returns the first job
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
        /// How long the job waits for a worker [default: settings job_ttl]
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        ttl: Option<Duration>,
        /// Wait this long for the job to finish
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        wait: Option<Duration>,
    },
    /// Jobs, newest first (active ones unless --all)
    List {
        /// Also jobs that ended
        #[arg(long)]
        all: bool,
        /// Only jobs for this agent
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// Most jobs to list
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: u32,
    },
    /// One job with its result or error
    Show {
        /// The job's id (see `jobs list`)
        id: JobId,
        /// Wait this long for it to finish
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        wait: Option<Duration>,
    },
    /// Cancel a job; a running command is killed
    Cancel {
        /// The job's id (see `jobs list`)
        id: JobId,
    },
    /// Queue again a write job parked in needs_recovery (after checking what it left behind)
    Recover {
        /// The job's id (see `jobs list`)
        id: JobId,
    },
    /// Queue again a job that failed, died, expired or was cancelled
    Retry {
        /// The job's id (see `jobs list`)
        id: JobId,
    },
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Peer name for this session [env: SWITCHBOARD_NAME] [default: client kind + directory]
    #[arg(long)]
    pub name: Option<String>,
    /// Push new mail as Claude Code channel events: auto (when the client takes them), on, off
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub push: String,
    /// Show a desktop notification when mail arrives that is not pushed to the agent
    #[arg(long, env = "SWITCHBOARD_NOTIFY", hide_env_values = true)]
    pub notify: bool,
    /// Run this shell command instead of a desktop notification; it gets
    /// SWITCHBOARD_NOTIFY_TITLE, _BODY, _FROM and _TO in its environment
    #[arg(
        long,
        env = "SWITCHBOARD_NOTIFY_COMMAND",
        value_name = "CMD",
        hide_env_values = true
    )]
    pub notify_command: Option<String>,
    /// With --relay: also tell the room this session's directory, repository and branch
    #[arg(long, env = "SWITCHBOARD_SHARE_LOCATION", hide_env_values = true)]
    pub share_location: bool,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Only peers with a live session
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
pub struct SendOptions {
    /// The message this one answers (marks it read)
    #[arg(long, value_name = "ID")]
    pub reply_to: Option<MessageId>,
    /// Idempotency key: resending with the same key returns the original and stores nothing
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// How long the message waits for its recipient, e.g. 30m or 2d [default: settings default_ttl]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Recipient peer name
    pub peer: String,
    /// Message text; `-` reads it from stdin
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
    #[command(flatten)]
    pub options: SendOptions,
}

#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Message text; `-` reads it from stdin
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
    /// Who receives it: room (everyone), dir or repo (peers working where you are)
    #[arg(long, default_value = "room")]
    pub scope: Scope,
    #[command(flatten)]
    pub options: SendOptions,
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Wait up to this long for mail when there is none, e.g. 30s
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
    /// Most messages to show (1 to 200)
    #[arg(long, default_value_t = switchboard_core::delivery::PULL_DEFAULT, value_name = "N")]
    pub limit: u32,
    /// Show without acknowledging (they stay unread and show again, marked as seen)
    #[arg(long)]
    pub no_ack: bool,
}

#[derive(Debug, Args)]
pub struct SentArgs {
    /// One message id; otherwise your most recent messages
    pub id: Option<MessageId>,
    /// Most messages to list
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only what arrives for this peer
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,
    /// Replay from after this message id instead of starting with new messages
    #[arg(long, value_name = "ID")]
    pub since: Option<MessageId>,
    /// Exit after this many messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}
