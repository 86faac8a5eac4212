#[flowtrace::traced(fields(user.id))]
async fn task() {}

fn main() {}
