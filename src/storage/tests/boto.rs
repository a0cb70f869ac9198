//! boto3 (which comes with moto) as an independent S3 client: what it sees of incomplete
//! uploads does not depend on our own ListMultipartUploads code.

use std::process::Command;

/// Runs `script` with boto3's S3 client as `s3`, `sys.argv[1:]` being `args`; its stdout.
fn boto3(script: &str, args: &[&str]) -> String {
    let program = format!(
        "import boto3, json, sys\n\
         s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
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
        "boto3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// (key, upload id) of every incomplete upload boto3's `list_multipart_uploads` reports.
pub fn boto3_incomplete_uploads(endpoint: &str, bucket: &str) -> Vec<(String, String)> {
    let out = boto3(
        "r = s3.list_multipart_uploads(Bucket=sys.argv[2])\n\
         print(json.dumps([[u['Key'], u['UploadId']] for u in r.get('Uploads', [])]))",
        &[endpoint, bucket],
    );
    serde_json::from_str(out.trim()).expect("a JSON list")
}

/// Starts a multipart upload at `key` with boto3's `create_multipart_upload`; its id.
pub fn boto3_create_upload(endpoint: &str, bucket: &str, key: &str) -> String {
    boto3(
        "print(s3.create_multipart_upload(Bucket=sys.argv[2], Key=sys.argv[3])['UploadId'])",
        &[endpoint, bucket, key],
    )
    .trim()
    .to_owned()
}
