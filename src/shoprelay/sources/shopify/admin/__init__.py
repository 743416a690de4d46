"""Shopify's GraphQL Admin API: the queries shoprelay sends, the client, and the converter."""
