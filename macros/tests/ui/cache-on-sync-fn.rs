#[flowtrace::traced(cache = n)]
fn task(n: u32) -> u32 {
    n
}

fn main() {}
