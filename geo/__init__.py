"""Geo room: coordinates, spatial indexes, OpenStreetMap roads and road ETAs.

- ``gridmend.geo.coordinates``: GCJ-02/BD-09 ↔ WGS-84, ``LocalProjector`` (UTM metres).
- ``gridmend.geo.spatial_index``: ``ServicePointIndex``, ``BBoxIndex``, ``AreaIndex``.
- ``gridmend.geo.osm_loader``: ``load_road_graph(path_or_name)`` (cached CSR ``RoadGraph``).
- ``gridmend.geo.routing``: ``RoadRouter`` / ``ApproximateRouter`` behind ``Router``.
- ``gridmend.geo.grid_on_osm``: ``grid_from_osm(path_or_name)`` — a grid on real streets.
"""
