#!/bin/sh
echo "restored"
