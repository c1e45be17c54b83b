"""Test doubles that are real servers: they speak a provider's protocol on 127.0.0.1."""
