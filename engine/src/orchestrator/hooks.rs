//! `pre_deploy` and `post_deploy` commands: run with `sh -c` in the project directory,
//! their output streamed (through the redactor) as the run's events, stopped with their
//! whole process group when they run out of time.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What a hook is told about the run, as environment variables: `FABRIK_*`, the app's
/// secrets (a migration needs its `DATABASE_URL` even when it comes from `.env`), and not
/// the providers' credentials, which only the host's HTTP gateway uses.
#[derive(Debug, Clone)]
pub struct HookEnv<'a> {
    pub project: &'a str,
    pub app: &'a str,
    /// The environment of the app's spec, if it has environments.
    pub environment: Option<&'a str>,
    pub domain: &'a str,
    pub url: &'a str,
    pub run_id: &'a str,
    pub secrets: &'a BTreeMap<String, SecretString>,
    /// Variables removed from the inherited environment.
    pub withheld: &'a [String],
}

/// How many of the last output lines a failure quotes.
const TAIL: usize = 5;

/// Why a hook failed, with the last lines it printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("{hook} hook: cannot run `sh`: {error}")]
    Spawn { hook: String, error: String },
    #[error("{hook} hook `{command}` failed ({status}){}", quoted(last_output))]
    Failed {
        hook: String,
        command: String,
        status: String,
        last_output: Vec<String>,
    },
    #[error("{hook} hook `{command}`: {error}")]
    Wait {
        hook: String,
        command: String,
        error: String,
    },
    #[error(
        "{hook} hook `{command}` did not finish within {seconds} s and was stopped{}",
        quoted(last_output)
    )]
    Timeout {
        hook: String,
        command: String,
        seconds: u64,
        last_output: Vec<String>,
    },
}

fn quoted(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last output: {}", lines.join(" | "))
    }
}

/// Runs `command`, calling `line` for each line it prints. Fails with the exit status (or
/// the timeout) and the last lines of output.
pub async fn run(
    which: &str,
    command: &str,
    dir: &Path,
    env: &HookEnv<'_>,
    timeout: Duration,
    mut line: impl FnMut(&str),
) -> Result<(), HookError> {
    let mut command_line = tokio::process::Command::new("sh");
    for name in env.withheld {
        command_line.env_remove(name);
    }
    for (name, value) in env.secrets {
        command_line.env(name, value.expose_secret());
    }
    let mut child = command_line
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("FABRIK_HOOK", which)
        .env("FABRIK_PROJECT", env.project)
        .env("FABRIK_APP", env.app)
        .env("FABRIK_ENVIRONMENT", env.environment.unwrap_or_default())
        .env("FABRIK_DOMAIN", env.domain)
        .env("FABRIK_URL", env.url)
        .env("FABRIK_RUN_ID", env.run_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout stops what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HookError::Spawn {
            hook: which.to_owned(),
            error: e.to_string(),
        })?;
    // Until the hook has exited: a timeout, or a run cancelled while it runs (Ctrl-C
    // drops this future), stops everything it started. Its own process group is not
    // the terminal's foreground group, so the terminal's SIGINT never reached it.
    let mut group = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
    // Lines as bytes: a byte that is not UTF-8 is shown as U+FFFD, never the end of the
    // stream (which would close the pipe and kill the hook with SIGPIPE).
    let mut stdout = child.stdout.take().map(|s| BufReader::new(s).split(b'\n'));
    let mut stderr = child.stderr.take().map(|s| BufReader::new(s).split(b'\n'));
    let mut tail = VecDeque::with_capacity(TAIL);
    let mut keep = |text: String| {
        line(&text);
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    };
    let finished = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                next = async { stdout.as_mut()?.next_segment().await.ok().flatten() }, if stdout.is_some() => match next {
                    Some(bytes) => keep(String::from_utf8_lossy(&bytes).into_owned()),
                    None => stdout = None,
                },
                next = async { stderr.as_mut()?.next_segment().await.ok().flatten() }, if stderr.is_some() => match next {
                    Some(bytes) => keep(String::from_utf8_lossy(&bytes).into_owned()),
                    None => stderr = None,
                },
                else => break,
            }
        }
        child.wait().await
    })
    .await;
    let last_output: Vec<String> = tail.into();
    let (hook, command) = (which.to_owned(), command.to_owned());
    if finished.is_ok() {
        // It exited by itself: what it left running in the background is its business.
        group.0 = None;
    }
    match finished {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(HookError::Failed {
            hook,
            command,
            status: status.to_string(),
            last_output,
        }),
        Ok(Err(e)) => Err(HookError::Wait {
            hook,
            command,
            error: e.to_string(),
        }),
        Err(_) => {
            drop(group);
            Err(HookError::Timeout {
                hook,
                command,
                seconds: timeout.as_secs(),
                last_output,
            })
        }
    }
}

/// Kills the hook's process group when dropped, unless disarmed (`None`).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
    }
}

fn kill_group(pid: i32) {
    #[expect(
        unsafe_code,
        reason = "kill(2) on a process group this process created; no memory is involved"
    )]
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HookEnv<'static> {
        static SECRETS: std::sync::LazyLock<BTreeMap<String, SecretString>> =
            std::sync::LazyLock::new(|| {
                BTreeMap::from([(
                    "API_KEY".to_owned(),
                    SecretString::from("k-0123456789".to_owned()),
                )])
            });
        static WITHHELD: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["PATH_TO_NOWHERE_TOKEN".to_owned()]);
        HookEnv {
            project: "acme",
            app: "api",
            environment: None,
            domain: "api.example.com",
            url: "https://api.example.com/health",
            run_id: "r1",
            secrets: &SECRETS,
            withheld: &WITHHELD,
        }
    }

    #[tokio::test]
    async fn a_hook_sees_the_run_and_its_output_is_streamed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lines = Vec::new();
        run(
            "pre_deploy",
            "echo \"$FABRIK_HOOK $FABRIK_APP $FABRIK_URL\"; echo err >&2; pwd; echo \"key=$API_KEY\"",
            dir.path(),
            &env(),
            Duration::from_secs(10),
            |l| lines.push(l.to_owned()),
        )
        .await
        .expect("succeeds");
        assert!(lines.contains(&"pre_deploy api https://api.example.com/health".to_owned()));
        assert!(lines.contains(&"err".to_owned()));
        assert!(lines.contains(&"key=k-0123456789".to_owned()), "{lines:?}");
        let cwd = std::fs::canonicalize(dir.path()).expect("canonical");
        assert!(lines.iter().any(|l| Path::new(l) == cwd), "{lines:?}");
    }

    /// Issue 16, point 12: a byte that is not UTF-8 neither kills the hook (SIGPIPE)
    /// nor loses the rest of its output.
    #[tokio::test]
    async fn output_that_is_not_utf8_is_shown_and_the_hook_runs_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lines = Vec::new();
        run(
            "post_deploy",
            "printf 'bad \\377 byte\\n'; for i in $(seq 1 2000); do echo line $i; done",
            dir.path(),
            &env(),
            Duration::from_secs(10),
            |l| lines.push(l.to_owned()),
        )
        .await
        .expect("the hook succeeds");
        assert_eq!(lines[0], "bad \u{fffd} byte");
        assert_eq!(lines.last().map(String::as_str), Some("line 2000"));
    }

    #[tokio::test]
    async fn a_failing_hook_reports_its_status_and_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = run(
            "post_deploy",
            "echo one; echo two; exit 3",
            dir.path(),
            &env(),
            Duration::from_secs(10),
            |_| {},
        )
        .await
        .expect_err("fails")
        .to_string();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("one | two"), "{error}");
    }

    #[tokio::test]
    async fn a_hook_out_of_time_is_stopped_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("survived");
        let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let error = run(
            "pre_deploy",
            &command,
            dir.path(),
            &env(),
            Duration::from_millis(300),
            |_| {},
        )
        .await
        .expect_err("times out")
        .to_string();
        assert!(error.contains("did not finish within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the background child was stopped too");
    }
}
