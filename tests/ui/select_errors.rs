// `select!` with no branch, a missing `=>`, and a word where `biased;` goes.
async fn no_branch() {
    runnel::select! {}
}

async fn missing_arrow() {
    runnel::select! {
        v = std::future::ready(1) v
    }
}

async fn not_biased() {
    runnel::select! {
        unbiased;
        v = std::future::ready(1) => v,
    }
}

fn main() {}
