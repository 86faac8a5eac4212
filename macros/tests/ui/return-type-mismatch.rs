#[flowtrace::traced]
async fn task() -> u32 {
    "not a number"
}

fn main() {}
