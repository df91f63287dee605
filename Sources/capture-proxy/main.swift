print("capture-proxy")
