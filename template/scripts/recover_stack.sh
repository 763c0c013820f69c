#!/usr/bin/env bash
# Usage: recover_stack.sh STACK_NAME EXECUTION_ROLE_ARN
#
# A stack whose first create failed ends in ROLLBACK_COMPLETE: it holds nothing, cannot be
# updated, and `sam deploy` fails on it every time. Delete it (through CloudFormation, with the
# stage's execution role) so the next deploy creates it afresh. Any other state is left alone:
# a live stack is never deleted here.
set -euo pipefail

stack="$1"
role_arn="$2"

if ! status="$(aws cloudformation describe-stacks --stack-name "${stack}" \
  --query 'Stacks[0].StackStatus' --output text 2>&1)"; then
  if [[ "${status}" == *"does not exist"* ]]; then
    echo "${stack} does not exist yet: the deploy creates it"
    exit 0
  fi
  echo "${status}" >&2
  exit 1
fi

if [[ "${status}" != "ROLLBACK_COMPLETE" ]]; then
  echo "${stack} is ${status}: nothing to recover"
  exit 0
fi

echo "${stack} is ROLLBACK_COMPLETE (its first deploy failed): deleting it before deploying again"
aws cloudformation delete-stack --stack-name "${stack}" --role-arn "${role_arn}"
aws cloudformation wait stack-delete-complete --stack-name "${stack}"
echo "${stack} deleted"
