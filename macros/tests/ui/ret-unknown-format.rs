#[flowtrace::traced(ret(Json))]
async fn task() -> u8 {
    1
}

fn main() {}
