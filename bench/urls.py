"""The public URLs plus a baseline: a plain DRF endpoint that only creates a user."""

from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config.urls_public import urlpatterns as public


class _UserIn(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField()


class CreateUserOnly(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        data = _UserIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = User.objects.create_user(
            data.validated_data["email"], data.validated_data["password"]
        )
        return Response({"id": str(user.pk)}, status=201)


urlpatterns = [*public, path("bench/create-user/", CreateUserOnly.as_view())]
