"""What several tests share: builders of platform updates, servers and logs."""
