bench.put("data/index.js",{"test_sets":[{"items":251,"name":"pricer-test","runs":27,"slug":"pricer-test"}]});
