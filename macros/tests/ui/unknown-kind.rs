#[flowtrace::traced(kind = servr)]
async fn task() {}

fn main() {}
