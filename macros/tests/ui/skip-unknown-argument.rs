#[flowtrace::traced(skip(usr))]
async fn task(user: String) {
    let _ = user;
}

fn main() {}
