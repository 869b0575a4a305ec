//! Exit codes, documented in README.md and `fabrik --help`.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; with `--detailed-exitcode`, also "nothing to change".
    Success,
    /// 1: a deploy failed or was rolled back, or something unexpected went wrong.
    Failure,
    /// 2: bad arguments or an invalid spec (clap uses 2 for usage errors too).
    Invalid,
    /// 3: with `--detailed-exitcode`, the plan has changes.
    Changes,
    /// 130: interrupted (Ctrl-C), after saying what was left and how to recover.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Invalid => 2,
            ExitStatus::Changes => 3,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
