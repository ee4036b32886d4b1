"""A tiny service that calls Kling (the mock) with kling_testkit's client and takes callbacks."""
