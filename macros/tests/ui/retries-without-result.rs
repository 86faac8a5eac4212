#[flowtrace::traced(retries = 2)]
async fn task() -> u32 {
    1
}

fn main() {}
