package signaler
