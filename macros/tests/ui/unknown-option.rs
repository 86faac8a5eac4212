#[flowtrace::traced(nmae = "typo")]
async fn task() {}

fn main() {}
