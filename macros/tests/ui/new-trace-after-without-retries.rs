#[flowtrace::traced(new_trace_after = "10m")]
async fn task() -> Result<(), String> {
    Ok(())
}

fn main() {}
