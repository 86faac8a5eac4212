struct Error;

#[flowtrace::traced(timeout = "5s")]
async fn task() -> Result<(), Error> {
    Ok(())
}

fn main() {}
