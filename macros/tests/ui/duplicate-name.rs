#[flowtrace::traced(name = "a", name = "b")]
async fn task() {}

fn main() {}
