#[flowtrace::traced(backoff = fixed)]
async fn task() -> Result<(), String> {
    Ok(())
}

fn main() {}
