"""HTTP views: thin translations between requests and backend calls."""
