#!/usr/bin/env python3
"""What a user scripts instead of segsync's bucket output, and the bucket's bookkeeping for
benchmarks/run, with botocore/boto3 (the library under `aws s3 cp`).

    s3.py ENDPOINT mb BUCKET              create a bucket
    s3.py ENDPOINT cp FILE BUCKET KEY     upload FILE as `aws s3 cp` does (s3transfer:
                                          8 MiB multipart parts, 10 threads)
    s3.py ENDPOINT ls BUCKET PREFIX       print "KEY SIZE ETAG" of every object below PREFIX

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Only ever talks to the moto
server the benchmark started on 127.0.0.1.
"""
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, command, *arguments = sys.argv[1:]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
if command == "mb":
    client.create_bucket(Bucket=arguments[0])
elif command == "cp":
    path, bucket, key = arguments
    # `aws s3 cp`'s defaults: 8 MiB threshold and parts, 10 concurrent requests.
    client.upload_file(path, bucket, key, Config=TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=10))
elif command == "ls":
    bucket, prefix = arguments
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            print(item["Key"], item["Size"], item["ETag"])
else:
    sys.exit(f"s3.py: unknown command {command}")
