"""Reads objects back through boto3 with checksum validation on, as an S3 user would.

Usage: s3_checksum.py ENDPOINT BUCKET KEY...; prints one JSON line per key with the
object's ChecksumSHA256 (base64, as HeadObject reports it) and whether GetObject validated it.
"""
import json
import sys

import boto3
from botocore.config import Config

endpoint, bucket, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="callvault-test",
    aws_secret_access_key="callvault-test",
    config=Config(response_checksum_validation="when_supported"),
)
for key in keys:
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    # botocore raises FlexibleChecksumError while reading when the body does not match.
    body = got["Body"].read()
    print(json.dumps({
        "key": key,
        "checksum_sha256": head.get("ChecksumSHA256"),
        "get_checksum_sha256": got.get("ChecksumSHA256"),
        "bytes": len(body),
    }))
