struct Handle;

#[derive(Debug)]
struct Error;

#[flowtrace::traced(retries = 2)]
async fn task(handle: Handle) -> Result<(), Error> {
    let _ = handle;
    Ok(())
}

fn main() {}
