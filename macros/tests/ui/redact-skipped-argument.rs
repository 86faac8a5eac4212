#[flowtrace::traced(skip(user), redact(user.password))]
async fn task(user: String) {
    let _ = user;
}

fn main() {}
