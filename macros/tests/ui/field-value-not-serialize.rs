struct Opaque;

#[flowtrace::traced(fields(value = Opaque))]
async fn task() {}

fn main() {}
