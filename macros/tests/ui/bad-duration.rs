#[flowtrace::traced(timeout = "5 minutes")]
async fn task() -> Result<(), String> {
    Ok(())
}

fn main() {}
