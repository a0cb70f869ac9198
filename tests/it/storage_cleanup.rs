//! `callvault storage cleanup` as an operator runs it, against moto: an incomplete upload
//! made with boto3 is listed, kept by a dry run, and aborted with `--older-than 0s`; an age
//! that is not one is refused.

use std::process::{Command, Output};

use crate::support::{Suite, service, unique_name};

/// `python3 -c` with boto3's S3 client as `s3` on `endpoint`; its trimmed stdout.
fn boto3(endpoint: &str, script: &str, args: &[&str]) -> String {
    let program = format!(
        "import boto3, json, sys\n\
         s3 = boto3.client('s3', endpoint_url={endpoint:?}, region_name='us-east-1',\n\
             aws_access_key_id='callvault-test', aws_secret_access_key='callvault-test')\n\
         {script}"
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn upload_ids(endpoint: &str, bucket: &str) -> Vec<String> {
    let out = boto3(
        endpoint,
        "r = s3.list_multipart_uploads(Bucket=sys.argv[1])\n\
         print(json.dumps([u['UploadId'] for u in r.get('Uploads', [])]))",
        &[bucket],
    );
    serde_json::from_str(&out).unwrap()
}

fn cleanup(endpoint: &str, bucket: &str, database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["storage", "cleanup"])
        .args(args)
        .env_clear()
        .env("CALLVAULT__STORAGE__KIND", "s3")
        .env("CALLVAULT__STORAGE__BUCKET", bucket)
        .env("CALLVAULT__STORAGE__ENDPOINT", endpoint)
        .env("CALLVAULT__STORAGE__REGION", "us-east-1")
        .env("CALLVAULT__DATABASE__URL", database)
        .env("AWS_ACCESS_KEY_ID", "callvault-test")
        .env("AWS_SECRET_ACCESS_KEY", "callvault-test")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn storage_cleanup_lists_keeps_in_a_dry_run_and_aborts_with_older_than_0s() {
    let Some(endpoint) = service("CALLVAULT_TEST_S3_ENDPOINT", Suite::S3) else {
        return;
    };
    let bucket = unique_name();
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/queue.db", dir.path().display());
    let id = boto3(
        &endpoint,
        "print(s3.create_multipart_upload(Bucket=sys.argv[1], Key='call/rec/chunk-0000.mp4')['UploadId'])",
        &[&bucket],
    );

    // moto reports every upload as initiated in 2010, so the default 24h would abort it too:
    // only the dry run and `0s` are told apart here.
    let dry = cleanup(
        &endpoint,
        &bucket,
        &database,
        &["--older-than", "0s", "--dry-run"],
    );
    let out = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{out}");
    assert!(
        out.contains("call/rec/chunk-0000.mp4") && out.contains(&id) && out.contains("would abort"),
        "{out}"
    );
    assert_eq!(
        upload_ids(&endpoint, &bucket),
        vec![id.clone()],
        "a dry run aborts nothing"
    );

    let done = cleanup(&endpoint, &bucket, &database, &["--older-than", "0s"]);
    let out = text(&done);
    assert_eq!(done.status.code(), Some(0), "{out}");
    assert!(out.contains(&id) && out.contains("aborted"), "{out}");
    assert_eq!(upload_ids(&endpoint, &bucket), Vec::<String>::new());

    let nonsense = cleanup(
        &endpoint,
        &bucket,
        &database,
        &["--older-than", "yesterday"],
    );
    assert_eq!(nonsense.status.code(), Some(2), "{}", text(&nonsense));
    assert!(
        text(&nonsense).contains("`yesterday` is not an age such as 24h"),
        "{}",
        text(&nonsense)
    );
}
