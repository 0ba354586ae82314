//! Stats math (placeholder; being written).
