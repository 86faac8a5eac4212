#[flowtrace::traced(name = task)]
async fn task() {}

fn main() {}
