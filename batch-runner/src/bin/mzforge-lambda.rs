//! `mzforge-lambda`: the engine's Step Functions steps on AWS Lambda (provided.al2023).
//! See `mzforge_batch_runner::lambda` for the events, results and error names.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use mzforge_batch_runner::lambda::{self, Environment, StepError};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Parser failures inside third-party readers surface as panics that the engine catches and
    // turns into errors; keep the default hook from printing them as crashes.
    if std::env::var_os("MZFORGE_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let env = Arc::new(Environment::from_env(tokio::runtime::Handle::current())?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let env = env.clone();
        async move {
            let deadline = lambda::deadline_from_epoch_ms(event.context.deadline);
            let result: Result<Value, StepError> =
                lambda::handle(&env, event.payload, deadline).await;
            result
        }
    }))
    .await
}
