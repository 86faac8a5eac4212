#[flowtrace::traced(parent = None::<opentelemetry::Context>, new_trace)]
async fn task() {}

fn main() {}
