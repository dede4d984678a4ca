"""Typed models of the public contract: requests, policies and job snapshots."""
