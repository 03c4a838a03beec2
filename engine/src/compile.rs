//! Rule set → [`Plan`]: the one place that reads `rampart-rules` types.
