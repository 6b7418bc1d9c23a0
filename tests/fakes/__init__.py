"""Local stand-ins of the services HayMaker talks to, served over HTTPS on loopback.

The project's real adapters, built with the real client libraries (azure-mgmt-*, azure-identity,
azure-monitor-query, azure-core), are pointed at these servers through their endpoint seam. Each
server answers like its service: status codes, headers (Location, Retry-After, ETag), paging and
error bodies follow the official REST references and the examples in Azure/azure-rest-api-specs.
The TLS certificate is made when the test session starts and is never committed.
"""
