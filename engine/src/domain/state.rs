//! The deployment state machine, exactly as DESIGN.md draws it:
//!
//! ```text
//! PENDING -> VALIDATING -> PROVISIONING -> DEPLOYING -> VERIFYING -> COMPLETE
//! VALIDATING -> FAILED
//! PROVISIONING | DEPLOYING | VERIFYING -> FAILED | ROLLING_BACK
//! ROLLING_BACK -> ROLLED_BACK | FAILED
//! COMPLETE, FAILED, ROLLED_BACK are terminal
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Pending,
    Validating,
    Provisioning,
    Deploying,
    Verifying,
    Complete,
    Failed,
    RollingBack,
    RolledBack,
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid state transition from {from} to {to}")]
pub struct InvalidStateTransition {
    pub from: State,
    pub to: State,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Pending,
        State::Validating,
        State::Provisioning,
        State::Deploying,
        State::Verifying,
        State::Complete,
        State::Failed,
        State::RollingBack,
        State::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Validating => "VALIDATING",
            State::Provisioning => "PROVISIONING",
            State::Deploying => "DEPLOYING",
            State::Verifying => "VERIFYING",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
            State::RollingBack => "ROLLING_BACK",
            State::RolledBack => "ROLLED_BACK",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Complete | State::Failed | State::RolledBack)
    }

    /// Whether the machine allows `self -> to`.
    pub fn allows(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Pending, Validating)
                | (Validating, Provisioning | Failed)
                | (Provisioning, Deploying | Failed | RollingBack)
                | (Deploying, Verifying | Failed | RollingBack)
                | (Verifying, Complete | Failed | RollingBack)
                | (RollingBack, RolledBack | Failed)
        )
    }

    /// The next state, or the typed error for a transition the machine forbids.
    pub fn transition(self, to: State) -> Result<State, InvalidStateTransition> {
        if self.allows(to) {
            Ok(to)
        } else {
            Err(InvalidStateTransition { from: self, to })
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for State {
    type Err = super::UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| super::UnknownName {
                what: "run state",
                value: text.to_owned(),
            })
    }
}

/// Where a deployment stands: the state of its latest run, or `DESTROYED` once
/// `fabrik destroy` deleted everything (the next apply creates it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    Run(State),
    Destroyed,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Run(state) => state.as_str(),
            DeploymentState::Destroyed => "DESTROYED",
        }
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for DeploymentState {
    type Err = super::UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "DESTROYED" => Ok(DeploymentState::Destroyed),
            _ => text
                .parse()
                .map(DeploymentState::Run)
                .map_err(|_| super::UnknownName {
                    what: "deployment state",
                    value: text.to_owned(),
                }),
        }
    }
}

impl Serialize for DeploymentState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    #[test]
    fn exactly_the_drawn_transitions_are_allowed() {
        let allowed = [
            (Pending, Validating),
            (Validating, Provisioning),
            (Validating, Failed),
            (Provisioning, Deploying),
            (Provisioning, Failed),
            (Provisioning, RollingBack),
            (Deploying, Verifying),
            (Deploying, Failed),
            (Deploying, RollingBack),
            (Verifying, Complete),
            (Verifying, Failed),
            (Verifying, RollingBack),
            (RollingBack, RolledBack),
            (RollingBack, Failed),
        ];
        for from in State::ALL {
            for to in State::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.allows(to), expected, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expected);
            }
        }
        assert_eq!(
            Complete
                .transition(Pending)
                .expect_err("terminal")
                .to_string(),
            "invalid state transition from COMPLETE to PENDING"
        );
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for state in [Complete, Failed, RolledBack] {
            assert!(state.is_terminal());
            assert!(State::ALL.iter().all(|to| !state.allows(*to)));
        }
    }

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("DONE".parse::<State>().is_err());
        for state in State::ALL
            .map(DeploymentState::Run)
            .into_iter()
            .chain([DeploymentState::Destroyed])
        {
            assert_eq!(state.as_str().parse::<DeploymentState>(), Ok(state));
        }
        assert!("DESTROYED".parse::<State>().is_err(), "not a run state");
    }
}
