#!/usr/bin/env bash
# Usage: recover_stack.sh STACK_NAME EXECUTION_ROLE_ARN
#
# Runs before every deploy and brings the stack into a state `sam deploy` can change, always
# through CloudFormation with the stage's execution role:
# - ROLLBACK_COMPLETE (its first create failed): it holds nothing and cannot be updated, so it is
#   deleted and the deploy creates it afresh.
# - UPDATE_ROLLBACK_FAILED (an update failed and so did its rollback): the rollback is continued.
#   If it fails again, a resource cannot return to its old state: the script stops and prints
#   the command that skips it.
# - ROLLBACK_FAILED (a first create failed and so did its cleanup): the stack may keep resources
#   that did get created, so deleting it is left to a person; the script prints the command.
# Any other state is left alone: a live stack is never deleted here.
set -euo pipefail

stack="$1"
role_arn="$2"

stack_status() {
  aws cloudformation describe-stacks --stack-name "${stack}" --query 'Stacks[0].StackStatus' --output text
}

# stderr apart from the status: a CLI warning must not hide ROLLBACK_COMPLETE.
errors="$(mktemp)"
trap 'rm -f "${errors}"' EXIT
if ! status="$(stack_status 2>"${errors}")"; then
  if grep -q "does not exist" "${errors}"; then
    echo "${stack} does not exist yet: the deploy creates it"
    exit 0
  fi
  cat "${errors}" >&2
  exit 1
fi

case "${status}" in
  ROLLBACK_COMPLETE)
    echo "${stack} is ROLLBACK_COMPLETE (its first deploy failed): deleting it before deploying again"
    aws cloudformation delete-stack --stack-name "${stack}" --role-arn "${role_arn}"
    aws cloudformation wait stack-delete-complete --stack-name "${stack}"
    echo "${stack} deleted"
    ;;
  UPDATE_ROLLBACK_FAILED)
    echo "${stack} is UPDATE_ROLLBACK_FAILED: continuing its rollback"
    aws cloudformation continue-update-rollback --stack-name "${stack}" --role-arn "${role_arn}"
    if ! aws cloudformation wait stack-rollback-complete --stack-name "${stack}"; then
      cat >&2 <<MESSAGE
${stack} is $(stack_status) again: a resource cannot be rolled back. Find it with
  aws cloudformation describe-stack-events --stack-name ${stack} --max-items 30
fix it by hand (or accept its new state), then skip it and run the deploy again:
  aws cloudformation continue-update-rollback --stack-name ${stack} --role-arn ${role_arn} --resources-to-skip <LogicalId>
MESSAGE
      exit 1
    fi
    echo "${stack} rolled back to its last good state"
    ;;
  ROLLBACK_FAILED)
    cat >&2 <<MESSAGE
${stack} is ROLLBACK_FAILED: its first deploy failed and so did its cleanup; no deploy can
change it. Check what it still holds, then delete it (tables are retained) and run the deploy again:
  aws cloudformation describe-stack-resources --stack-name ${stack}
  aws cloudformation delete-stack --stack-name ${stack} --role-arn ${role_arn}
MESSAGE
    exit 1
    ;;
  *)
    echo "${stack} is ${status}: nothing to recover"
    ;;
esac
