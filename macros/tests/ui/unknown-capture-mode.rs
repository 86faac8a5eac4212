#[flowtrace::traced(capture = yaml)]
async fn task() {}

fn main() {}
